import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { decodeImage } from './decode-node.ts';
import { CLIP_MEAN, CLIP_STD, toClipPixels, toVaePixels } from './pixels.ts';
import { cropRect, resize } from './transform.ts';

const chelsea = await decodeImage(
  new Uint8Array(readFileSync(new URL('../../../shared/data/photos/chelsea.png', import.meta.url))),
);

describe('model pixels', () => {
  it('CLIP: planar (3, size, size), (v/255 − mean)/std per channel (float32, 1e-6)', () => {
    const w = 5;
    const h = 5;
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([i * 10, 255 - i * 10, 7 * i, i % 2 ? 0 : 255], i * 4);
    const out = toClipPixels(rgba, w, h, 5);
    expect(out.length).toBe(75);
    const expected = [0, 1, 2].flatMap((c) =>
      Array.from({ length: 25 }, (_, i) => ([i * 10, 255 - i * 10, 7 * i][c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]),
    );
    assertClose(out, expected, { rtol: 0, atol: 1e-6 }, 'clip pixels');
    // Black and white map to the ends of CLIP's range.
    expect(toClipPixels(new Uint8ClampedArray([0, 0, 0, 255]), 1, 1, 1)[0]).toBeCloseTo(-1.7922625, 6);
    expect(toClipPixels(new Uint8ClampedArray([255, 255, 255, 255]), 1, 1, 1)[2]).toBeCloseTo(2.145897, 5);
  });

  it('CLIP on a photo: shorter side to size, centred crop, then normalise', () => {
    const out = toClipPixels(chelsea.data, chelsea.width, chelsea.height, 224);
    expect(out.length).toBe(3 * 224 * 224);
    // Same as resizing to 336×224 (Pillow bicubic) and cropping x ∈ [56, 280).
    const manual = cropRect(resize(chelsea, 336, 224, 'bicubic'), { x: 56, y: 0, width: 224, height: 224 });
    for (const [c, x, y] of [
      [0, 0, 0],
      [1, 100, 50],
      [2, 223, 223],
    ]) {
      const v = manual.data[(y * 224 + x) * 4 + c];
      expect(out[c * 224 * 224 + y * 224 + x]).toBeCloseTo((v / 255 - CLIP_MEAN[c]) / CLIP_STD[c], 5);
    }
    // Resampling preserves the mean: each channel's mean matches that of the source region
    // the crop covers (x ∈ [56, 280)·451/336 ≈ [75, 376)) to within half a level.
    const region = cropRect(chelsea, { x: 75, y: 0, width: 301, height: 300 });
    for (let c = 0; c < 3; c++) {
      let a = 0;
      for (let i = 0; i < 224 * 224; i++) a += out[c * 224 * 224 + i] * CLIP_STD[c] + CLIP_MEAN[c];
      let b = 0;
      for (let i = c; i < region.data.length; i += 4) b += region.data[i] / 255;
      expect(Math.abs(a / (224 * 224) - b / (301 * 300)) * 255).toBeLessThan(0.5);
    }
  });

  it('VAE: [−1, 1], planar, optional square resize', () => {
    const out = toVaePixels(new Uint8ClampedArray([0, 128, 255, 255, 255, 0, 0, 0]), 2, 1);
    assertClose(out, [-1, 1, 128 / 127.5 - 1, -1, 1, -1], { rtol: 0, atol: 1e-7 }, 'vae pixels');
    const sq = toVaePixels(chelsea.data, chelsea.width, chelsea.height, 64);
    expect(sq.length).toBe(3 * 64 * 64);
    expect(sq.every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it('validates the buffer size', () => {
    expect(() => toClipPixels(new Uint8ClampedArray(10), 2, 2, 2)).toThrow(/expected 16/);
  });
});
