// The checks every session request goes through once, after its defaults are resolved: whole
// numbers and numbers in range, and the photo crop. Messages are sentences for people (the app
// shows them as they are; the CLI prints them).
import type { CropRect } from '../domain/types.ts';
import { cropRect } from '../image/transform.ts';
import type { RgbaImage } from '../image/types.ts';
import type { Range } from '../domain/limits.ts';
import { BadRequest } from './bad-request.ts';

export function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new BadRequest(`${what} must be a whole number from ${lo} to ${hi}, not ${JSON.stringify(v)}.`);
  }
  return v;
}

export function numIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new BadRequest(`${what} must be a number from ${lo} to ${hi}, not ${JSON.stringify(v)}.`);
  }
  return v;
}

/** `v` within a domain Range (domain/limits.ts). */
export function inRange(v: unknown, r: Range, what: string): number {
  const lo = r.min ?? r.above ?? -Infinity;
  const n = r.integer ? intIn(v, lo, r.max, what) : numIn(v, lo, r.max, what);
  if (r.above !== undefined && n <= r.above) throw new BadRequest(`${what} must be above ${r.above}, not ${n}.`);
  return n;
}

export function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new BadRequest(`${what} must be one of ${allowed.join(', ')}, not ${JSON.stringify(v)}.`);
  }
  return v as T;
}

/** The square crop, in upright (EXIF-applied) pixels of the decoded photo; null: the centred square. */
export function applyCrop(image: RgbaImage, crop: CropRect | null): RgbaImage {
  if (!crop) return cropRect(image);
  const { x, y, size } = crop;
  if (![x, y, size].every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new BadRequest(`The crop ${JSON.stringify(crop)} is not a square in pixels.`);
  }
  const r = { x: Math.round(x), y: Math.round(y), size: Math.round(size) };
  if (r.size < 1 || r.x < 0 || r.y < 0 || r.x + r.size > image.width || r.y + r.size > image.height) {
    throw new BadRequest(
      `The crop (${r.size} × ${r.size} at ${r.x}, ${r.y}) does not lie inside the ${image.width} × ${image.height} photo. Move the crop square back onto the photo.`,
    );
  }
  return cropRect(image, { x: r.x, y: r.y, width: r.size, height: r.size });
}
