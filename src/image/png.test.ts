import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { chunk, concat, encodeTestPng, ihdr, SIGNATURE, type TestPngSpec } from '../../test/png-test-encoder.ts';
import { decodePng, type Inflate } from './png.ts';
import { ImageError } from './types.ts';

const inflate: Inflate = (d, max) => inflateSync(d, { maxOutputLength: max });
const decode = (b: Uint8Array) => decodePng(b, inflate);

/** Expected RGBA8 of a spec, computed directly from its samples (not via the decoder's code). */
function expectedRgba(spec: TestPngSpec): number[] {
  const { width, height, colorType, bitDepth, samples } = spec;
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const max = 2 ** bitDepth - 1;
  const to8 = (v: number) => Math.round((v / max) * 255);
  const out: number[] = [];
  for (let i = 0; i < width * height; i++) {
    const s = Array.from({ length: ch }, (_, c) => samples[i * ch + c]);
    if (colorType === 3) {
      const [r, g, b] = spec.palette![s[0]];
      out.push(r, g, b, spec.trns && s[0] < spec.trns.length ? spec.trns[s[0]] : 255);
      continue;
    }
    const key = spec.trns
      ? Array.from({ length: spec.trns.length / 2 }, (_, k) => spec.trns![2 * k] * 256 + spec.trns![2 * k + 1])
      : null;
    if (colorType === 0) out.push(to8(s[0]), to8(s[0]), to8(s[0]), key && s[0] === key[0] ? 0 : 255);
    if (colorType === 2) out.push(to8(s[0]), to8(s[1]), to8(s[2]), key && key.every((k, c) => s[c] === k) ? 0 : 255);
    if (colorType === 4) out.push(to8(s[0]), to8(s[0]), to8(s[0]), to8(s[1]));
    if (colorType === 6) out.push(to8(s[0]), to8(s[1]), to8(s[2]), to8(s[3]));
  }
  return out;
}

function randomSpec(
  colorType: TestPngSpec['colorType'],
  bitDepth: TestPngSpec['bitDepth'],
  width: number,
  height: number,
  interlace: boolean,
  seed: number,
): TestPngSpec {
  const r = rng(seed);
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const entries = colorType === 3 ? Math.min(2 ** bitDepth, 200) : 0;
  const max = colorType === 3 ? entries - 1 : 2 ** bitDepth - 1;
  const samples = Array.from({ length: width * height * ch }, () => r.int(0, max));
  const spec: TestPngSpec = { width, height, colorType, bitDepth, interlace, samples };
  if (colorType === 3) {
    spec.palette = Array.from({ length: entries }, () => [r.int(0, 255), r.int(0, 255), r.int(0, 255)]);
    spec.trns = Uint8Array.from({ length: Math.max(1, entries >> 1) }, () => r.int(0, 255));
  }
  return spec;
}

const COMBOS: [TestPngSpec['colorType'], TestPngSpec['bitDepth']][] = [
  [0, 1],
  [0, 2],
  [0, 4],
  [0, 8],
  [0, 16],
  [2, 8],
  [2, 16],
  [3, 1],
  [3, 2],
  [3, 4],
  [3, 8],
  [4, 8],
  [4, 16],
  [6, 8],
  [6, 16],
];

describe('PNG decoder', () => {
  for (const interlace of [false, true]) {
    it.each(COMBOS)(
      `decodes colour type %i at %i bits (${interlace ? 'Adam7' : 'progressive'}), odd sizes, every filter`,
      (ct, depth) => {
        for (const [w, h] of [
          [13, 7],
          [1, 1],
          [3, 10],
          [9, 2],
        ]) {
          const spec = randomSpec(ct, depth, w, h, interlace, 100 * ct + depth + w);
          const img = decode(encodeTestPng(spec));
          expect([img.width, img.height]).toEqual([w, h]);
          expect(Array.from(img.data)).toEqual(expectedRgba(spec));
        }
      },
    );
  }

  it('applies tRNS colour keys for grey and RGB (8 and 16 bit)', () => {
    const grey = {
      width: 4,
      height: 1,
      colorType: 0,
      bitDepth: 16,
      samples: [0, 1000, 65535, 1000],
      trns: Uint8Array.of(0x03, 0xe8),
    } as const;
    expect(Array.from(decode(encodeTestPng(grey)).data)).toEqual(expectedRgba(grey));
    expect(decode(encodeTestPng(grey)).data[7]).toBe(0);
    const rgb = {
      width: 2,
      height: 1,
      colorType: 2,
      bitDepth: 8,
      samples: [1, 2, 3, 4, 5, 6],
      trns: Uint8Array.of(0, 4, 0, 5, 0, 6),
    } as const;
    expect(Array.from(decode(encodeTestPng(rgb)).data)).toEqual([1, 2, 3, 255, 4, 5, 6, 0]);
  });

  it('resolves Paeth ties in the specified order (images with few distinct values)', () => {
    const r = rng(11);
    for (const ct of [0, 2] as const) {
      const ch = ct === 0 ? 1 : 3;
      const samples = Array.from({ length: 40 * 25 * ch }, () => [10, 20, 30, 40][r.int(0, 3)]);
      const spec = { width: 40, height: 25, colorType: ct, bitDepth: 8, samples } as const;
      expect(Array.from(decode(encodeTestPng(spec)).data)).toEqual(expectedRgba(spec));
    }
  });

  it('joins image data split over many IDAT chunks', () => {
    const spec = randomSpec(6, 8, 20, 11, false, 5);
    expect(Array.from(decode(encodeTestPng({ ...spec, idatChunks: 7 })).data)).toEqual(expectedRgba(spec));
  });

  it('reports the eXIf chunk', () => {
    const exif = Uint8Array.of(0x4d, 0x4d, 0, 42, 0, 0, 0, 8);
    const spec = { ...randomSpec(2, 8, 2, 2, false, 6), extraChunks: [{ type: 'eXIf', data: exif }] };
    expect(Array.from(decode(encodeTestPng(spec)).info.exif!)).toEqual(Array.from(exif));
  });

  describe('refuses damaged files with a clear error', () => {
    const good = encodeTestPng({ ...randomSpec(2, 8, 30, 20, false, 7), idatChunks: 3 });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ImageError);
        return (e as ImageError).code;
      }
      return 'decoded';
    };

    it('a flipped byte fails the CRC check, naming the chunk', () => {
      const bad = good.slice();
      bad[60] ^= 0x10;
      expect(code(() => decode(bad))).toBe('corrupt');
      expect(() => decode(bad)).toThrow(/checksum mismatch in the IDAT chunk/);
    });

    it('truncated at any point: inside a chunk, at a chunk boundary between IDATs, inside the signature', () => {
      for (const cut of [10, 30, 40, 60, good.length - 30, good.length - 13]) {
        expect([cut, code(() => decode(good.subarray(0, cut)))]).toEqual([cut, 'truncated']);
      }
      // Cut between the 2nd and 3rd IDAT: chunks are intact but the zlib stream ends early.
      const firstIdat = 8 + 25;
      const len1 = new DataView(good.buffer).getUint32(firstIdat);
      const second = firstIdat + 12 + len1;
      const len2 = new DataView(good.buffer).getUint32(second);
      expect(code(() => decode(good.subarray(0, second + 12 + len2)))).toBe('truncated');
      // Missing only IEND is refused too, as the app's Photo step refuses it (issue 12).
      expect(code(() => decode(good.subarray(0, good.length - 12)))).toBe('truncated');
    });

    it('a header claiming 10000×5000 is refused as too large before reading image data', () => {
      // No image data at all: the size check must come first.
      const huge = concat([SIGNATURE, ihdr(10000, 5000, 8, 2)]);
      expect(code(() => decode(huge))).toBe('too-large');
      expect(() => decode(huge)).toThrow(/10000×5000 \(50\.0 megapixels\); the limit is 40 megapixels/);
    });

    it('invalid headers, palettes and filters', () => {
      expect(code(() => decode(concat([SIGNATURE, ihdr(4, 4, 4, 2), chunk('IEND', new Uint8Array())])))).toBe(
        'corrupt',
      );
      expect(code(() => decode(concat([SIGNATURE, ihdr(0, 4, 8, 2)])))).toBe('corrupt');
      expect(code(() => decode(concat([SIGNATURE, chunk('IDAT', new Uint8Array(4))])))).toBe('corrupt');
      const noPalette = encodeTestPng({ width: 1, height: 1, colorType: 3, bitDepth: 8, samples: [0] });
      expect(code(() => decode(noPalette))).toBe('corrupt');
      const badIndex = encodeTestPng({
        width: 2,
        height: 1,
        colorType: 3,
        bitDepth: 8,
        samples: [0, 5],
        palette: [[1, 2, 3]],
      });
      expect(() => decode(badIndex)).toThrow(/palette index 5/);
      const badFilter = concat([
        SIGNATURE,
        ihdr(1, 1, 8, 0),
        chunk('IDAT', deflate([9, 0])),
        chunk('IEND', new Uint8Array()),
      ]);
      expect(() => decode(badFilter)).toThrow(/filter type 9/);
      const critical = encodeTestPng({
        ...randomSpec(0, 8, 1, 1, false, 1),
        extraChunks: [{ type: 'ABCD', data: new Uint8Array() }],
      });
      expect(code(() => decode(critical))).toBe('unsupported-format');
    });
  });
});

function deflate(bytes: number[]): Uint8Array {
  // A stored (uncompressed) zlib stream, written by hand so this case needs no compressor.
  const n = bytes.length;
  const body = [0x78, 0x01, 0x01, n & 255, n >> 8, ~n & 255, (~n >> 8) & 255, ...bytes];
  let a = 1;
  let b = 0;
  for (const x of bytes) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return Uint8Array.from([...body, b >> 8, b & 255, a >> 8, a & 255]);
}
