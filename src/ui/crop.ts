// The square crop over the photo, in source pixels of the (EXIF-oriented) image. Moves and
// resizes keep it inside the image; resizing keeps its centre where possible.
import type { CropRect } from '../domain/types.ts';

/** Smallest crop side, in source pixels (the model's input is far larger than this anyway). */
export const MIN_CROP = 16;

/** The largest centred square. */
export function defaultCrop(width: number, height: number): CropRect {
  const size = Math.min(width, height);
  return { x: Math.floor((width - size) / 2), y: Math.floor((height - size) / 2), size };
}

export function clampCrop(c: CropRect, width: number, height: number): CropRect {
  const limit = Math.min(width, height);
  const size = Math.round(Math.min(limit, Math.max(Math.min(MIN_CROP, limit), c.size)));
  return {
    x: Math.round(Math.min(width - size, Math.max(0, c.x))),
    y: Math.round(Math.min(height - size, Math.max(0, c.y))),
    size,
  };
}

export function moveCrop(c: CropRect, dx: number, dy: number, width: number, height: number): CropRect {
  return clampCrop({ ...c, x: c.x + dx, y: c.y + dy }, width, height);
}

/** Grows (delta > 0) or shrinks the square about its centre, sliding it back inside at edges. */
export function resizeCrop(c: CropRect, delta: number, width: number, height: number): CropRect {
  const limit = Math.min(width, height);
  const size = Math.min(limit, Math.max(Math.min(MIN_CROP, limit), c.size + delta));
  const cx = c.x + c.size / 2;
  const cy = c.y + c.size / 2;
  return clampCrop({ x: cx - size / 2, y: cy - size / 2, size }, width, height);
}

/**
 * The keyboard contract of the crop box: arrows move by 1% of the image's short side
 * (10% with Shift), + and − resize by about 5%. Returns null for keys it does not handle.
 */
export function cropForKey(key: string, shift: boolean, c: CropRect, width: number, height: number): CropRect | null {
  const unit = Math.max(1, Math.round(Math.min(width, height) * (shift ? 0.1 : 0.01)));
  // An even step keeps the centre on whole pixels, so + then − returns exactly.
  const grow = 2 * Math.max(1, Math.round(Math.min(width, height) * 0.025));
  switch (key) {
    case 'ArrowLeft':
      return moveCrop(c, -unit, 0, width, height);
    case 'ArrowRight':
      return moveCrop(c, unit, 0, width, height);
    case 'ArrowUp':
      return moveCrop(c, 0, -unit, width, height);
    case 'ArrowDown':
      return moveCrop(c, 0, unit, width, height);
    case '+':
    case '=':
      return resizeCrop(c, grow, width, height);
    case '-':
    case '_':
      return resizeCrop(c, -grow, width, height);
    default:
      return null;
  }
}
