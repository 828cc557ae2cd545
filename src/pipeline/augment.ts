// Light augmentation for tuning on one photo: the whole square and a slightly zoomed
// centre crop, each also mirrored. Zoom and mirror keep the subject recognisable.
import { cropRect, resize } from '../image/transform.ts';
import { newImage, type RgbaImage } from '../image/types.ts';

/** The square image at `size`, and its centre 7/8 zoomed to `size`. */
export function squareViews(square: RgbaImage, size: number): RgbaImage[] {
  const fit = (img: RgbaImage) =>
    img.width === size && img.height === size ? img : resize(img, size, size, 'bicubic');
  const s = square.width;
  const inner = Math.max(1, Math.round((s * 7) / 8));
  const off = Math.floor((s - inner) / 2);
  return [fit(square), fit(cropRect(square, { x: off, y: off, width: inner, height: inner }))];
}

export function flipHorizontal(img: RgbaImage): RgbaImage {
  const out = newImage(img.width, img.height);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const src = (y * img.width + x) * 4;
      const dst = (y * img.width + (img.width - 1 - x)) * 4;
      for (let c = 0; c < 4; c++) out.data[dst + c] = img.data[src + c];
    }
  }
  return out;
}
