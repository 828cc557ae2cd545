// Structured mutations of images, one generator per class of issue 12: JPEG frame sizes,
// scan counts, missing scans and cut data; PNG shapes (1 × N, N × 1), IDAT bombs and junk,
// chunk floods, bad checksums, missing IEND. Each input must decode within a time and memory
// bound to an image of its header's size, or be refused with an ImageError — and whatever the
// app's Photo step refuses (image/image-header.ts checkStructure), the Node decoder refuses too.
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { bounded } from '../../test/bounded.ts';
import { rng, type Rng } from '../../test/random.ts';
import { checkStructure, readImageHeader } from './image-header.ts';
import { decodeImage } from './decode-node.ts';
import {
  jpegClaiming,
  jpegSegments,
  jpegWithoutScan,
  jpegWithScans,
  pngChunkAt,
  pngFromRaw,
} from '../../test/image-fixtures.ts';
import { chunk, concat, ihdr, SIGNATURE } from '../../test/png-test-encoder.ts';
import { ImageError } from './types.ts';

const pick = <T>(g: Rng, xs: readonly T[]): T => xs[g.int(0, xs.length - 1)];

async function check(bytes: Uint8Array, label: string): Promise<'decoded' | 'refused'> {
  const r = await bounded(label, () => decodeImage(bytes), { ms: 3000, mib: 150 });
  const header = readImageHeader(bytes);
  const app = header.ok ? checkStructure(bytes, header.header.format) : { kind: 'header' };
  if (r.ok) {
    expect(app, `${label}: the Photo step refuses what Node decoded`).toBeNull();
    if (header.ok) {
      const { width, height } = r.value;
      // EXIF orientation may swap the sides.
      expect([`${width}x${height}`, `${height}x${width}`], label).toContain(
        `${header.header.width}x${header.header.height}`,
      );
    }
    return 'decoded';
  }
  if (!(r.error instanceof ImageError)) throw new Error(`${label}: ${String(r.error)}`, { cause: r.error });
  expect(r.error.message.length, label).toBeLessThan(400);
  return 'refused';
}

function smallJpeg(g: Rng, w: number, h: number): Uint8Array {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : g.int(0, 255);
  return new Uint8Array(jpeg.encode({ width: w, height: h, data }, 80).data);
}

describe('JPEG: structured mutations', () => {
  it('120 generated JPEGs: bounded, and Node refuses all the Photo step refuses', async () => {
    const g = rng(5150);
    const base = smallJpeg(g, 48, 32);
    const sides = [1, 7, 8, 48, 300, 1000, 4000, 6150, 6500, 20000, 65535];
    const gens: ((g: Rng) => Uint8Array)[] = [
      (g) => jpegClaiming(base, pick(g, sides), pick(g, sides), g.int(0, base.length)), // size vs data
      (g) => jpegWithScans(base, pick(g, [1, 5, 63, 64, 65, 500, 2000])), // scan count
      () => jpegWithoutScan(base), // no scan
      (g) => base.subarray(0, g.int(3, base.length)), // cut anywhere (EOI lost)
      (g) => {
        // a sampling factor changed
        const b = base.slice();
        const sof = jpegSegments(b).find((s) => s.marker === 0xc0)!;
        b[sof.at + 11 + 3 * g.int(0, 2)] = pick(g, [0x11, 0x22, 0x41, 0x44, 0x00, 0xff]);
        return b;
      },
      (g) => {
        // a segment length changed
        const b = base.slice();
        const seg = pick(g, jpegSegments(b));
        b[seg.at + 2] = g.int(0, 255);
        b[seg.at + 3] = g.int(0, 255);
        return b;
      },
    ];
    const outcomes = { decoded: 0, refused: 0 };
    for (let i = 0; i < 120; i++) {
      const k = i % gens.length;
      outcomes[await check(gens[k](g), `jpeg mutation ${i} (generator ${k})`)]++;
    }
    expect(outcomes.decoded).toBeGreaterThan(5);
    expect(outcomes.refused).toBeGreaterThan(40);
  });
});

describe('PNG: structured mutations', () => {
  it('100 generated PNGs: bounded, and Node refuses all the Photo step refuses', async () => {
    const g = rng(6502);
    const gens: ((g: Rng) => Uint8Array)[] = [
      (g) => {
        // extreme shapes with real data: 1 × N and N × 1
        const n = pick(g, [1, 2, 1000, 65_536, 200_000]);
        const tall = g.uniform() < 0.5;
        const [w, h] = tall ? [1, n] : [n, 1];
        const depth = pick(g, [8, 16]);
        const row = 1 + (w * depth) / 8;
        return pngFromRaw(w, h, depth, 0, new Uint8Array(row * h));
      },
      (g) => {
        // a header claiming a size its data does not have
        const w = pick(g, [1, 100, 6000, 40_000_000]);
        const h = pick(g, [1, 100, 6000]);
        return pngFromRaw(w, h, 8, 0, new Uint8Array(1000));
      },
      (g) =>
        pngFromRaw(16, 16, 8, 0, new Uint8Array(0), {
          idat: deflateSync(new Uint8Array(pick(g, [1 << 10, 1 << 20, 16 << 20]))),
        }), // bomb
      (g) =>
        pngFromRaw(16, 16, 8, 0, new Uint8Array(0), { idat: new Uint8Array(pick(g, [10, 400, 100_000])).fill(0x55) }), // junk
      (g) => {
        // the image data split into many tiny IDATs
        const raw = new Uint8Array(17 * 16);
        const z = deflateSync(raw);
        const pieces = Math.min(z.length, pick(g, [2, 50, 1000]));
        const parts = Array.from({ length: pieces }, (_, i) =>
          chunk('IDAT', z.subarray(Math.floor((i * z.length) / pieces), Math.floor(((i + 1) * z.length) / pieces))),
        );
        return concat([SIGNATURE, ihdr(16, 16, 8, 0), ...parts, chunk('IEND', new Uint8Array(0))]);
      },
      (g) => {
        // a chunk flood before the data
        const one = chunk('tEXt', Uint8Array.of(0x61, 0, 0x62));
        const n = pick(g, [10, 10_000, 70_000]);
        const flood = new Uint8Array(one.length * n);
        for (let i = 0; i < n; i++) flood.set(one, i * one.length);
        return concat([
          SIGNATURE,
          ihdr(4, 4, 8, 0),
          flood,
          chunk('IDAT', deflateSync(new Uint8Array(20))),
          chunk('IEND', new Uint8Array(0)),
        ]);
      },
      (g) => {
        // a bit flipped in the image data (its checksum then fails), or IEND lost
        const png = pngFromRaw(
          16,
          16,
          8,
          0,
          new Uint8Array(17 * 16).map((_, i) => i),
        );
        if (g.uniform() < 0.5) return png.subarray(0, png.length - 12);
        const b = png.slice();
        b[pngChunkAt(b, 'IDAT') + 8 + g.int(0, 10)] ^= 1 << g.int(0, 7);
        return b;
      },
    ];
    const outcomes = { decoded: 0, refused: 0 };
    for (let i = 0; i < 100; i++) {
      const k = i % gens.length;
      outcomes[await check(gens[k](g), `png mutation ${i} (generator ${k})`)]++;
    }
    expect(outcomes.decoded).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(30);
  });
});
