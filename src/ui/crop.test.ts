import { describe, expect, it } from 'vitest';
import { clampCrop, cropForKey, defaultCrop, MIN_CROP, moveCrop, resizeCrop } from './crop.ts';

describe('crop', () => {
  it('starts as the largest centred square', () => {
    expect(defaultCrop(451, 300)).toEqual({ x: 75, y: 0, size: 300 });
    expect(defaultCrop(300, 451)).toEqual({ x: 0, y: 75, size: 300 });
    expect(defaultCrop(512, 512)).toEqual({ x: 0, y: 0, size: 512 });
  });

  it('stays inside the image when moved past an edge', () => {
    const c = { x: 10, y: 10, size: 100 };
    expect(moveCrop(c, -50, 0, 400, 300)).toEqual({ x: 0, y: 10, size: 100 });
    expect(moveCrop(c, 1000, 1000, 400, 300)).toEqual({ x: 300, y: 200, size: 100 });
  });

  it('resizes about its centre and never beyond the short side or below the minimum', () => {
    expect(resizeCrop({ x: 100, y: 100, size: 100 }, 20, 400, 300)).toEqual({ x: 90, y: 90, size: 120 });
    expect(resizeCrop({ x: 100, y: 0, size: 280 }, 100, 400, 300)).toEqual({ x: 90, y: 0, size: 300 });
    expect(resizeCrop({ x: 100, y: 100, size: 20 }, -100, 400, 300).size).toBe(MIN_CROP);
    // A tiny image: the crop is the image.
    expect(clampCrop({ x: 0, y: 0, size: 5 }, 8, 10)).toEqual({ x: 0, y: 0, size: 8 });
  });

  it('answers arrow keys and +/−, and nothing else', () => {
    const c = { x: 100, y: 50, size: 200 };
    expect(cropForKey('ArrowRight', false, c, 451, 300)).toEqual({ x: 103, y: 50, size: 200 });
    expect(cropForKey('ArrowLeft', true, c, 451, 300)).toEqual({ x: 70, y: 50, size: 200 });
    expect(cropForKey('ArrowUp', false, c, 451, 300)).toEqual({ x: 100, y: 47, size: 200 });
    expect(cropForKey('ArrowDown', false, c, 451, 300)).toEqual({ x: 100, y: 53, size: 200 });
    expect(cropForKey('+', false, c, 451, 300)).toEqual({ x: 92, y: 42, size: 216 });
    expect(cropForKey('-', false, c, 451, 300)).toEqual({ x: 108, y: 58, size: 184 });
    // Shrink then grow is the identity (no half-pixel drift).
    const odd = { x: 48, y: 0, size: 300 };
    expect(cropForKey('+', false, cropForKey('-', false, odd, 451, 300)!, 451, 300)).toEqual(odd);
    expect(cropForKey('a', false, c, 451, 300)).toBeNull();
  });
});
