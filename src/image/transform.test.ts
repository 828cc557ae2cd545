import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { decodePng } from './png.ts';
import {
  centerSquare,
  cropRect,
  flattenAlpha,
  resize,
  resizeAndCenterCrop,
  shortestEdgeSize,
  squareRect,
  type ResampleFilter,
} from './transform.ts';
import type { RgbaImage } from './types.ts';

const chelsea = decodePng(
  new Uint8Array(readFileSync(new URL('../../../shared/data/photos/chelsea.png', import.meta.url))),
  (d, max) => inflateSync(d, { maxOutputLength: max }),
);

function image(w: number, h: number, px: (x: number, y: number) => [number, number, number, number]): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(px(x, y), (y * w + x) * 4);
  return { width: w, height: h, data };
}
const at = (img: RgbaImage, x: number, y: number, c = 0) => img.data[(y * img.width + x) * 4 + c];

/**
 * Independent float64 resampler from the definition: output sample o covers source
 * [o·s, (o+1)·s), s = in/out; weights k((i + ½ − centre)/max(s,1)) over every source i,
 * normalised; horizontal pass, clamp to [0, 255] (Pillow keeps 8-bit intermediates), vertical
 * pass; no rounding.
 */
function resizeRef(img: RgbaImage, W: number, H: number, kernel: (x: number) => number): Float64Array {
  const weights = (inN: number, outN: number) => {
    const s = inN / outN;
    const fs = Math.max(s, 1);
    return Array.from({ length: outN }, (_, o) => {
      const c = (o + 0.5) * s;
      const w = Array.from({ length: inN }, (_, i) => kernel((i + 0.5 - c) / fs));
      const sum = w.reduce((a, b) => a + b, 0);
      return w.map((v) => v / sum);
    });
  };
  const clamp = (v: number) => Math.min(255, Math.max(0, v));
  const wx = weights(img.width, W);
  const wy = weights(img.height, H);
  const mid = new Float64Array(W * img.height * 4);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let i = 0; i < img.width; i++) s += wx[x][i] * at(img, i, y, c);
        mid[(y * W + x) * 4 + c] = clamp(s);
      }
  const out = new Float64Array(W * H * 4);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let j = 0; j < img.height; j++) s += wy[y][j] * mid[(j * W + x) * 4 + c];
        out[(y * W + x) * 4 + c] = clamp(s);
      }
  return out;
}

const cubic = (x: number) => {
  const a = -0.5;
  x = Math.abs(x);
  return x < 1 ? (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1 : x < 2 ? a * (x ** 3 - 5 * x ** 2 + 8 * x - 4) : 0;
};

describe('crop', () => {
  it('centre square of landscape, portrait and square images', () => {
    expect(centerSquare(451, 300)).toEqual({ x: 75, y: 0, width: 300, height: 300 });
    expect(centerSquare(300, 451)).toEqual({ x: 0, y: 75, width: 300, height: 300 });
    expect(centerSquare(64, 64)).toEqual({ x: 0, y: 0, width: 64, height: 64 });
    const sq = cropRect(chelsea);
    expect([sq.width, sq.height]).toEqual([300, 300]);
    expect(Array.from(sq.data.subarray(0, 4))).toEqual(Array.from(chelsea.data.subarray(75 * 4, 75 * 4 + 4)));
  });

  it('copies the user rectangle exactly, up to the image edges', () => {
    const r = { x: 400, y: 250, width: 51, height: 50 };
    const c = cropRect(chelsea, r);
    expect([c.width, c.height]).toEqual([51, 50]);
    for (const [x, y] of [
      [0, 0],
      [50, 49],
      [10, 20],
    ]) {
      for (let k = 0; k < 4; k++) expect(at(c, x, y, k)).toBe(at(chelsea, r.x + x, r.y + y, k));
    }
  });

  it('crops the square a person picks (domain CropRect) through squareRect', () => {
    expect(squareRect({ x: 75, y: 10, size: 200 })).toEqual({ x: 75, y: 10, width: 200, height: 200 });
    const c = cropRect(chelsea, squareRect({ x: 75, y: 10, size: 200 }));
    expect([c.width, c.height]).toEqual([200, 200]);
    expect(at(c, 199, 199, 1)).toBe(at(chelsea, 274, 209, 1));
  });

  it('refuses rectangles outside the image or not in whole pixels', () => {
    expect(() => cropRect(chelsea, { x: 401, y: 250, width: 51, height: 50 })).toThrow(/outside the 451×300 image/);
    expect(() => cropRect(chelsea, { x: -1, y: 0, width: 10, height: 10 })).toThrow(/outside/);
    expect(() => cropRect(chelsea, { x: 0, y: 251, width: 10, height: 50 })).toThrow(/outside/);
    expect(() => cropRect(chelsea, { x: 0.5, y: 0, width: 10, height: 10 })).toThrow(/integers/);
    expect(() => cropRect(chelsea, { x: 0, y: 0, width: 0, height: 10 })).toThrow(/size ≥ 1/);
  });
});

describe('resize', () => {
  const filters: ResampleFilter[] = ['box', 'bilinear', 'bicubic', 'lanczos'];

  it.each(filters)('keeps a constant image constant (%s; down, up, mixed, with alpha)', (f) => {
    const img = image(37, 23, () => [200, 17, 90, 255]);
    const translucent = image(37, 23, () => [200, 17, 90, 128]);
    for (const [w, h] of [
      [8, 5],
      [100, 61],
      [50, 7],
      [37, 40],
    ]) {
      const out = resize(img, w, h, f);
      expect(out.data.every((v, i) => v === [200, 17, 90, 255][i % 4])).toBe(true);
      const t = resize(translucent, w, h, f);
      // Premultiplied resampling: colour survives up to the 8-bit premultiply round trip.
      for (let i = 0; i < t.data.length; i += 4) {
        expect(t.data[i + 3]).toBe(128);
        expect(
          Math.abs(t.data[i] - 200) + Math.abs(t.data[i + 1] - 17) + Math.abs(t.data[i + 2] - 90),
        ).toBeLessThanOrEqual(3);
      }
    }
  });

  it.each(filters)('keeps a horizontal gradient monotone (%s)', (f) => {
    const img = image(97, 9, (x) => [Math.round((x * 255) / 96), 0, 0, 255]);
    for (const w of [13, 31, 200]) {
      const out = resize(img, w, 4, f);
      for (let y = 0; y < 4; y++)
        for (let x = 1; x < w; x++) expect(at(out, x, y)).toBeGreaterThanOrEqual(at(out, x - 1, y));
      expect(at(out, w - 1, 0)).toBeGreaterThan(at(out, 0, 0) + 200);
    }
  });

  it('box 2× reduction is the rounded pairwise average per pass (Pillow: horizontal, round, vertical, round)', () => {
    const r = rng(3);
    const img = image(10, 6, () => [r.int(0, 255), r.int(0, 255), r.int(0, 255), 255]);
    const out = resize(img, 5, 3, 'box');
    for (let y = 0; y < 3; y++)
      for (let x = 0; x < 5; x++) {
        const h = (yy: number) => Math.floor((at(img, 2 * x, yy) + at(img, 2 * x + 1, yy) + 1) / 2);
        expect(at(out, x, y)).toBe(Math.floor((h(2 * y) + h(2 * y + 1) + 1) / 2));
      }
  });

  it('bicubic matches the float64 definition within 1.25 levels (antialiased shrink and plain enlarge)', () => {
    const r = rng(4);
    const img = image(41, 29, () => [r.int(0, 255), r.int(0, 255), r.int(0, 255), 255]);
    for (const [w, h] of [
      [13, 9],
      [7, 29],
      [90, 64],
    ]) {
      const ours = resize(img, w, h, 'bicubic');
      const ref = resizeRef(img, w, h, cubic);
      let worst = 0;
      ours.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref[i]))));
      // Pillow rounds after each pass (≤ ½ level each), and the two passes' rounding can add up.
      expect(worst).toBeLessThanOrEqual(1.25);
    }
  });

  it('a 4× shrink averages over the whole footprint (antialiasing): a 1-px checkerboard becomes flat grey', () => {
    const board = image(64, 64, (x, y) => ((x + y) % 2 ? [255, 255, 255, 255] : [0, 0, 0, 255]));
    const out = resize(board, 16, 16, 'bicubic');
    for (let i = 0; i < out.data.length; i += 4) expect(Math.abs(out.data[i] - 127.5)).toBeLessThanOrEqual(1.5);
  });

  it('shortest edge as transformers computes it (long side truncated) and the centred crop', () => {
    expect(shortestEdgeSize(451, 300, 224)).toEqual([336, 224]);
    expect(shortestEdgeSize(300, 451, 224)).toEqual([224, 336]);
    expect(shortestEdgeSize(640, 427, 32)).toEqual([47, 32]);
    const c = resizeAndCenterCrop(chelsea, 224);
    expect([c.width, c.height]).toEqual([224, 224]);
    const full = resize(chelsea, 336, 224);
    expect(Array.from(c.data.subarray(0, 8))).toEqual(Array.from(full.data.subarray(56 * 4, 58 * 4)));
  });

  it('flattens alpha onto a background', () => {
    const img = image(2, 1, (x) => (x ? [0, 0, 0, 0] : [100, 50, 0, 128]));
    const out = flattenAlpha(img, [255, 255, 255]);
    expect(Array.from(out.data)).toEqual([177, 152, 127, 255, 255, 255, 255, 255]);
  });

  it('rejects bad sizes', () => {
    expect(() => resize(chelsea, 0, 10)).toThrow(/positive integers/);
    expect(() => resize({ width: 2, height: 2, data: new Uint8ClampedArray(3) }, 1, 1)).toThrow(/16/);
  });
});
