// Geometry on RGBA8 images: crop, resample, alpha handling.
//
// `resize` reproduces Pillow's Image.resize (libImaging/Resample.c), which is what
// transformers' CLIPImageProcessor runs: a separable convolution, horizontal pass then
// vertical pass, each rounded to 8 bits; when shrinking, the filter's support is widened by
// the scale factor, so every source pixel contributes (antialiasing); 22-bit fixed-point
// weights; RGBA is resampled premultiplied.
import type { CropRect } from '../domain/types.ts';
import { checkImage, newImage, type RgbaImage } from './types.ts';

/**
 * Any axis-aligned rectangle in pixels, for the geometry here. The crop a person picks is
 * always a square, domain/types.ts's CropRect {x, y, size}; squareRect turns it into one.
 */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The rectangle a square crop covers. */
export function squareRect(crop: CropRect): PixelRect {
  return { x: crop.x, y: crop.y, width: crop.size, height: crop.size };
}

/** The largest centred square (the default crop). */
export function centerSquare(width: number, height: number): PixelRect {
  const side = Math.min(width, height);
  return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), width: side, height: side };
}

/** Crops to `rect` (integer pixels, inside the image); the centred square by default. */
export function cropRect(img: RgbaImage, rect: PixelRect = centerSquare(img.width, img.height)): RgbaImage {
  checkImage(img);
  const { x, y, width, height } = rect;
  if (![x, y, width, height].every(Number.isInteger) || width < 1 || height < 1) {
    throw new RangeError(`crop ${JSON.stringify(rect)}: position and size must be integers, size ≥ 1`);
  }
  if (x < 0 || y < 0 || x + width > img.width || y + height > img.height) {
    throw new RangeError(`crop ${JSON.stringify(rect)} lies outside the ${img.width}×${img.height} image`);
  }
  const out = newImage(width, height);
  for (let r = 0; r < height; r++) {
    const s = ((y + r) * img.width + x) * 4;
    out.data.set(img.data.subarray(s, s + width * 4), r * width * 4);
  }
  return out;
}

export type ResampleFilter = 'box' | 'bilinear' | 'bicubic' | 'lanczos';

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));

const FILTERS: Record<ResampleFilter, { support: number; f: (x: number) => number }> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: {
    // Keys' cubic convolution kernel with a = −0.5 (Catmull–Rom).
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coefficients {
  /** First source index per output index. */
  start: Int32Array;
  /** Number of taps per output index. */
  count: Int32Array;
  /** Fixed-point weights, `stride` slots per output index. */
  weights: Int32Array;
  stride: number;
}

/** Taps and weights mapping inSize samples onto outSize. */
function coefficients(inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { support: baseSupport, f } = FILTERS[filter];
  const scale = inSize / outSize;
  // Shrinking by s widens the kernel by s, so it averages over all the pixels it replaces.
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const w = new Float64Array(stride);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      w[i - lo] = f((i - center + 0.5) / filterScale);
      sum += w[i - lo];
    }
    for (let i = 0; i < hi - lo; i++) {
      const k = sum !== 0 ? w[i] / sum : w[i];
      weights[o * stride + i] = Math.trunc(k < 0 ? -0.5 + k * ONE : 0.5 + k * ONE);
    }
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, stride };
}

const clip8 = (acc: number) => Math.min(255, Math.max(0, Math.floor(acc / ONE)));

/** One separable pass along x (horizontal) or y; rounds to 8 bits like Pillow. */
function pass(src: RgbaImage, outW: number, outH: number, c: Coefficients, horizontal: boolean): RgbaImage {
  const out = newImage(outW, outH);
  const { data } = src;
  const sw = src.width;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const base = o * c.stride;
      let r = HALF,
        g = HALF,
        b = HALF,
        a = HALF;
      for (let k = 0; k < c.count[o]; k++) {
        const wgt = c.weights[base + k];
        const s = (horizontal ? y * sw + c.start[o] + k : (c.start[o] + k) * sw + x) * 4;
        r += data[s] * wgt;
        g += data[s + 1] * wgt;
        b += data[s + 2] * wgt;
        a += data[s + 3] * wgt;
      }
      const d = (y * outW + x) * 4;
      out.data[d] = clip8(r);
      out.data[d + 1] = clip8(g);
      out.data[d + 2] = clip8(b);
      out.data[d + 3] = clip8(a);
    }
  }
  return out;
}

function isOpaque(img: RgbaImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) return false;
  return true;
}

/** RGBA → premultiplied (Pillow's "RGBa"): c·a/255 rounded, in integers. */
function premultiply(img: RgbaImage): RgbaImage {
  const out = newImage(img.width, img.height);
  const s = img.data;
  for (let i = 0; i < s.length; i += 4) {
    const a = s[i + 3];
    for (let c = 0; c < 3; c++) {
      const t = s[i + c] * a + 128;
      out.data[i + c] = ((t >> 8) + t) >> 8;
    }
    out.data[i + 3] = a;
  }
  return out;
}

/** Premultiplied → RGBA: c·255/a truncated (fully transparent pixels keep their values). */
function unpremultiply(img: RgbaImage): RgbaImage {
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    const a = d[i + 3];
    if (a === 0 || a === 255) continue;
    for (let c = 0; c < 3; c++) d[i + c] = Math.min(255, Math.floor((255 * d[i + c]) / a));
  }
  return img;
}

/**
 * Resamples to width × height. `filter` defaults to bicubic (CLIPImageProcessor's
 * resample=3); use 'lanczos' for VaeImageProcessor's default.
 */
export function resize(img: RgbaImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbaImage {
  checkImage(img);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize: target size ${width}×${height} must be positive integers`);
  }
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  const opaque = isOpaque(img);
  let cur = opaque ? img : premultiply(img);
  if (width !== img.width) cur = pass(cur, width, cur.height, coefficients(img.width, width, filter), true);
  if (height !== img.height) cur = pass(cur, width, height, coefficients(img.height, height, filter), false);
  return opaque ? cur : unpremultiply(cur);
}

/** Output size when the shorter side is scaled to `size` (transformers' shortest_edge: long side truncated). */
export function shortestEdgeSize(width: number, height: number, size: number): [number, number] {
  return width <= height
    ? [size, Math.max(1, Math.trunc((size * height) / width))]
    : [Math.max(1, Math.trunc((size * width) / height)), size];
}

/** Scales the shorter side to `size` and crops the centred size × size square (CLIP's preprocessing). */
export function resizeAndCenterCrop(img: RgbaImage, size: number, filter: ResampleFilter = 'bicubic'): RgbaImage {
  const [w, h] = shortestEdgeSize(img.width, img.height, size);
  const scaled = resize(img, w, h, filter);
  return cropRect(scaled, { x: Math.floor((w - size) / 2), y: Math.floor((h - size) / 2), width: size, height: size });
}

/** Composites over an opaque background colour (for transparent PNGs); alpha becomes 255. */
export function flattenAlpha(
  img: RgbaImage,
  background: readonly [number, number, number] = [255, 255, 255],
): RgbaImage {
  checkImage(img);
  const out = newImage(img.width, img.height);
  const s = img.data;
  for (let i = 0; i < s.length; i += 4) {
    const a = s[i + 3] / 255;
    for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(s[i + c] * a + background[c] * (1 - a));
    out.data[i + 3] = 255;
  }
  return out;
}
