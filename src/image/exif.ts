// EXIF orientation: cameras store pixels as the sensor saw them and record how to turn them
// (TIFF tag 0x0112). Browsers apply it with imageOrientation: 'from-image'; the Node decoders
// apply it here.
import { newImage, type RgbaImage } from './types.ts';

/** Orientation 1…8 from a TIFF/EXIF block ("II*\0…" or "MM\0*…"), 1 when absent or unreadable. */
export function tiffOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const u16 = (p: number) => (little ? tiff[p] | (tiff[p + 1] << 8) : (tiff[p] << 8) | tiff[p + 1]);
  const u32 = (p: number) =>
    (little
      ? tiff[p] | (tiff[p + 1] << 8) | (tiff[p + 2] << 16) | (tiff[p + 3] << 24)
      : (tiff[p] << 24) | (tiff[p + 1] << 16) | (tiff[p + 2] << 8) | tiff[p + 3]) >>> 0;
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > tiff.length) return 1;
    if (u16(e) === 0x0112 && u16(e + 2) === 3) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** Orientation from a JPEG's APP1 "Exif" segment, 1 when absent. */
export function jpegOrientation(b: Uint8Array): number {
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const marker = b[p + 1];
    if (marker === 0xda || marker === 0xd9) break;
    const len = (b[p + 2] << 8) | b[p + 3];
    if (marker === 0xe1 && len >= 8 && String.fromCharCode(...b.subarray(p + 4, p + 10)) === 'Exif\0\0') {
      return tiffOrientation(b.subarray(p + 10, Math.min(b.length, p + 2 + len)));
    }
    p += 2 + len;
  }
  return 1;
}

/**
 * The image as it should be displayed for an EXIF orientation:
 * 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
 * 8 rotate 90° counter-clockwise.
 */
export function applyOrientation(img: RgbaImage, orientation: number): RgbaImage {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, data } = img;
  const swap = orientation >= 5;
  const out = newImage(swap ? h : w, swap ? w : h);
  const W = out.width;
  // Destination of source pixel (x, y).
  const dest: (x: number, y: number) => number = {
    2: (x: number, y: number) => y * W + (w - 1 - x),
    3: (x: number, y: number) => (h - 1 - y) * W + (w - 1 - x),
    4: (x: number, y: number) => (h - 1 - y) * W + x,
    5: (x: number, y: number) => x * W + y,
    6: (x: number, y: number) => x * W + (h - 1 - y),
    7: (x: number, y: number) => (w - 1 - x) * W + (h - 1 - y),
    8: (x: number, y: number) => (w - 1 - x) * W + y,
  }[orientation]!;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 4;
      const d = dest(x, y) * 4;
      out.data[d] = data[s];
      out.data[d + 1] = data[s + 1];
      out.data[d + 2] = data[s + 2];
      out.data[d + 3] = data[s + 3];
    }
  }
  return out;
}
