// RGBA8 → the float tensors the models take, channel-first (3, H, W). Alpha is dropped, as
// PIL's convert("RGB") does in both Hugging Face preprocessors; call flattenAlpha first to
// put transparent areas on a background instead.
import { resizeAndCenterCrop } from './transform.ts';
import { checkImage, type RgbaImage } from './types.ts';

/** OpenAI CLIP's normalisation (CLIPImageProcessor image_mean / image_std). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

function asImage(rgba: Uint8ClampedArray | Uint8Array, w: number, h: number): RgbaImage {
  const img = {
    width: w,
    height: h,
    data:
      rgba instanceof Uint8ClampedArray ? rgba : new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength),
  };
  checkImage(img, 'pixels');
  return img;
}

/** (value/255 − mean_c)/std_c per channel, planar. */
function planar(img: RgbaImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) out[c * n + i] = (img.data[i * 4 + c] / 255 - mean[c]) / std[c];
  }
  return out;
}

/**
 * CLIPImageProcessor: shorter side → `size` (Pillow bicubic), centre crop size × size,
 * /255, CLIP mean/std. Returns Float32Array (3, size, size).
 */
export function toClipPixels(rgba: Uint8ClampedArray | Uint8Array, w: number, h: number, size: number): Float32Array {
  let img = asImage(rgba, w, h);
  if (w !== size || h !== size) img = resizeAndCenterCrop(img, size, 'bicubic');
  return planar(img, CLIP_MEAN, CLIP_STD);
}

/**
 * VAE input in [−1, 1] (VaeImageProcessor: x/255·2 − 1). With `size`, the shorter side is
 * first scaled to it (Pillow Lanczos, VaeImageProcessor's default filter) and the centre
 * square cropped; otherwise the full w × h image. Returns Float32Array (3, H, W).
 */
export function toVaePixels(rgba: Uint8ClampedArray | Uint8Array, w: number, h: number, size?: number): Float32Array {
  let img = asImage(rgba, w, h);
  if (size !== undefined && (w !== size || h !== size)) img = resizeAndCenterCrop(img, size, 'lanczos');
  return planar(img, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
}
