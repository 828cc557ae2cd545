import { describe, expect, it } from 'vitest';
import { applyOrientation, jpegOrientation, tiffOrientation } from './exif.ts';
import type { RgbaImage } from './types.ts';

type Grid = number[][];
const mirror = (g: Grid) => g.map((r) => [...r].reverse());
const flip = (g: Grid) => [...g].reverse();
const transpose = (g: Grid) => g[0].map((_, x) => g.map((r) => r[x]));
const rotateCw = (g: Grid) => mirror(transpose(g));

// What each EXIF orientation asks the viewer to do, composed from basic grid operations.
const DISPLAY: Record<number, (g: Grid) => Grid> = {
  1: (g) => g,
  2: mirror,
  3: (g) => flip(mirror(g)),
  4: flip,
  5: transpose,
  6: rotateCw,
  7: (g) => rotateCw(mirror(g)),
  8: (g) => rotateCw(rotateCw(rotateCw(g))),
};

function toImage(g: Grid): RgbaImage {
  const h = g.length;
  const w = g[0].length;
  const data = new Uint8ClampedArray(w * h * 4);
  g.flat().forEach((v, i) => data.set([v, 255 - v, v >> 1, 255], i * 4));
  return { width: w, height: h, data };
}

function tiff(orientation: number, little: boolean): Uint8Array {
  const b = new Uint8Array(8 + 2 + 2 * 12 + 4);
  const dv = new DataView(b.buffer);
  b.set(little ? [0x49, 0x49] : [0x4d, 0x4d]);
  dv.setUint16(2, 42, little);
  dv.setUint32(4, 8, little);
  dv.setUint16(8, 2, little);
  // An unrelated tag first (ImageWidth), then Orientation (SHORT, count 1).
  dv.setUint16(10, 0x0100, little);
  dv.setUint16(12, 3, little);
  dv.setUint32(14, 1, little);
  dv.setUint16(18, 640, little);
  dv.setUint16(22, 0x0112, little);
  dv.setUint16(24, 3, little);
  dv.setUint32(26, 1, little);
  dv.setUint16(30, orientation, little);
  return b;
}

describe('EXIF orientation', () => {
  const grid: Grid = [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
    [9, 10, 11, 12],
  ];

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i matches the composed grid operations', (o) => {
    expect(applyOrientation(toImage(grid), o)).toEqual(toImage(DISPLAY[o](grid)));
  });

  it('reads the tag from little- and big-endian TIFF and from a JPEG APP1 segment', () => {
    for (const o of [1, 3, 6, 8]) {
      expect(tiffOrientation(tiff(o, true))).toBe(o);
      expect(tiffOrientation(tiff(o, false))).toBe(o);
    }
    const t = tiff(6, false);
    const app0 = [0xff, 0xe0, 0, 16, ...new TextEncoder().encode('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0];
    const app1 = [0xff, 0xe1, (t.length + 8) >> 8, (t.length + 8) & 255, ...new TextEncoder().encode('Exif\0\0'), ...t];
    expect(jpegOrientation(Uint8Array.from([0xff, 0xd8, ...app0, ...app1, 0xff, 0xda, 0, 2]))).toBe(6);
    expect(jpegOrientation(Uint8Array.from([0xff, 0xd8, ...app0, 0xff, 0xda, 0, 2]))).toBe(1);
    expect(tiffOrientation(Uint8Array.of(1, 2, 3))).toBe(1);
    expect(tiffOrientation(tiff(9, true))).toBe(1);
  });
});
