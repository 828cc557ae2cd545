// The deterministic deflate against an independent decoder: node:zlib must inflate every
// output back to the input, and the zlib header and Adler-32 must be what zlib checks.
import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deflateDeterministic } from './deflate.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
}

const cases: Record<string, Uint8Array> = {
  empty: new Uint8Array(0),
  one: Uint8Array.of(7),
  text: new TextEncoder().encode('a photo of S* on the beach, a photo of S* in the snow, a photo of S*'),
  // Runs longer than the longest match (258) and overlapping copies at distance 1.
  runs: Uint8Array.from({ length: 5000 }, (_, i) => (i < 2000 ? 0 : i < 2600 ? 255 : (i >> 7) & 3)),
  noise: Uint8Array.from({ length: 70_000 }, lcg(1)),
  // An RGBA gradient with PNG filter bytes, as png-encode.ts lays rows out: longer than the window.
  image: (() => {
    const w = 96;
    const h = 120;
    const raw = new Uint8Array(h * (1 + w * 4));
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) raw.set([x * 2, y * 2, (x + y) & 0xf0, 255], y * (1 + w * 4) + 1 + x * 4);
    return raw;
  })(),
  // Repeats farther back than the 32 KiB window.
  far: (() => {
    const block = Uint8Array.from({ length: 40_000 }, lcg(2));
    const out = new Uint8Array(80_000);
    out.set(block);
    out.set(block, 40_000);
    return out;
  })(),
};

describe('deflateDeterministic', () => {
  for (const [name, data] of Object.entries(cases)) {
    it(`round-trips through node:zlib: ${name}`, () => {
      const z = deflateDeterministic(data);
      expect(Buffer.from(inflateSync(z)).equals(Buffer.from(data))).toBe(true);
      expect((z[0] * 256 + z[1]) % 31).toBe(0);
      expect(deflateDeterministic(data)).toEqual(z);
    });
  }
  it('compresses what repeats and stays near raw size for noise', () => {
    expect(deflateDeterministic(cases.runs).length).toBeLessThan(cases.runs.length / 20);
    // Within a quarter of zlib's default level on image rows (measured: 30614 vs 30769 bytes).
    expect(deflateDeterministic(cases.image).length).toBeLessThan(1.25 * deflateSync(cases.image).length);
    // Stored blocks: 5 bytes per 64 KiB block plus the 6-byte zlib frame.
    expect(deflateDeterministic(cases.noise).length).toBeLessThanOrEqual(cases.noise.length + 5 * 2 + 6);
  });
});
