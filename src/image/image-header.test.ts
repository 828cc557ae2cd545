import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  checkPixelCount,
  checkStructure,
  describeOther,
  inspectImage,
  readImageHeader,
  sniffFormat,
} from './image-header.ts';
import { MAX_PIXELS } from '../domain/limits.ts';
import { ImageError } from './types.ts';

const photo = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../../shared/data/photos/${name}`, import.meta.url)));

/** Signature + IHDR (CRC from node:zlib) + an empty IDAT + IEND: a PNG that claims w × h. */
function pngClaiming(w: number, h: number, depth = 8, colour = 2): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlibCrc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colour;
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', Buffer.alloc(0)),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

/** RIFF/WEBP container around one chunk. */
function webp(fourcc: string, payload: number[]): Uint8Array {
  const body = Buffer.from(payload);
  const chunkHead = Buffer.alloc(8);
  chunkHead.write(fourcc, 0, 'latin1');
  chunkHead.writeUInt32LE(body.length, 4);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + 8 + body.length, 4);
  head.write('WEBP', 8, 'latin1');
  return new Uint8Array(Buffer.concat([head, chunkHead, body, Buffer.alloc(body.length % 2)]));
}

const le16 = (v: number) => [v & 0xff, v >> 8];
const le24 = (v: number) => [v & 0xff, (v >> 8) & 0xff, v >> 16];

describe('readImageHeader', () => {
  // Sizes as `file(1)` reports them for the shared photos.
  it.each([
    ['chelsea.png', 'png', 451, 300],
    ['astronaut.png', 'png', 512, 512],
    ['coffee.png', 'png', 600, 400],
    ['grace_hopper.jpg', 'jpeg', 512, 600],
    ['rocket.jpg', 'jpeg', 640, 427],
  ])('reads %s as %s %i × %i', (name, format, width, height) => {
    const bytes = photo(name);
    expect(readImageHeader(bytes)).toEqual({
      ok: true,
      header: { format, mime: `image/${format}`, width, height },
    });
    expect(checkStructure(bytes, format as 'png' | 'jpeg')).toBeNull();
  });

  it('reads a gigantic claimed size without any pixel data', () => {
    const r = readImageHeader(pngClaiming(10000, 5000));
    expect(r).toMatchObject({ ok: true, header: { width: 10000, height: 5000 } });
  });

  it('reads WebP VP8X, VP8 and VP8L headers', () => {
    const vp8x = webp('VP8X', [0x10, 0, 0, 0, ...le24(7999), ...le24(5999)]);
    expect(readImageHeader(vp8x)).toMatchObject({
      ok: true,
      header: { format: 'webp', mime: 'image/webp', width: 8000, height: 6000 },
    });
    // frame tag (key frame, version 0, shown), start code, 14-bit sizes with 2 scale bits set
    const vp8 = webp('VP8 ', [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, ...le16(640 | 0x4000), ...le16(427 | 0x8000), 0, 0]);
    expect(readImageHeader(vp8)).toMatchObject({ ok: true, header: { width: 640, height: 427 } });
    const bits = (300 - 1) | ((451 - 1) << 14) | (1 << 28);
    const vp8l = webp('VP8L', [0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, bits >>> 24, 0, 0, 0, 0, 0]);
    expect(readImageHeader(vp8l)).toMatchObject({ ok: true, header: { width: 300, height: 451 } });
    expect(checkStructure(vp8l, 'webp')).toBeNull();
    expect(checkStructure(vp8l.subarray(0, vp8l.length - 2), 'webp')).toEqual({ kind: 'truncated' });
  });

  it('says empty for zero bytes', () => {
    expect(readImageHeader(new Uint8Array(0))).toEqual({ ok: false, problem: { kind: 'empty' } });
  });

  it('names what a non-image is', () => {
    const text = new TextEncoder().encode('Shopping list:\n- milk\n- eggs\n');
    expect(readImageHeader(text)).toEqual({ ok: false, problem: { kind: 'not-image', detected: 'text' } });
    expect(describeOther(new TextEncoder().encode('GIF89a\x01\x00\x01\x00'))).toBe('a GIF image');
    const heic = new Uint8Array([0, 0, 0, 0x18, ...Buffer.from('ftypheic'), 0, 0, 0, 0]);
    expect(describeOther(heic)).toBe('a HEIC/HEIF photo');
    expect(describeOther(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('an SVG drawing');
    expect(describeOther(new TextEncoder().encode('%PDF-1.7\n'))).toBe('a PDF document');
    expect(describeOther(new Uint8Array([0x00, 0x13, 0x99, 0xfe, 0x00, 0x01]))).toBeNull();
    expect(sniffFormat(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBeNull();
  });

  it('asks for more bytes when a prefix ends inside the header, then reads it', () => {
    // A JPEG whose SOF sits behind a 40 KB APP1 segment, as camera files with EXIF thumbnails do.
    const full = photo('grace_hopper.jpg');
    const app1 = new Uint8Array(40_000);
    app1.set([0xff, 0xe1, (40_000 - 2) >> 8, (40_000 - 2) & 0xff]);
    const big = new Uint8Array([...full.subarray(0, 2), ...app1, ...full.subarray(2)]);
    const prefix = big.subarray(0, 4096);
    const r = readImageHeader(prefix, big.length);
    expect(r.ok).toBe(false);
    if (r.ok || r.problem.kind !== 'need-more') throw new Error(`expected need-more, got ${JSON.stringify(r)}`);
    expect(r.problem.need).toBeGreaterThan(40_000);
    expect(readImageHeader(big.subarray(0, r.problem.need + 4096), big.length)).toMatchObject({
      ok: true,
      header: { width: 512, height: 600 },
    });
  });

  it('says truncated when the file ends inside the header', () => {
    const jpg = photo('grace_hopper.jpg').subarray(0, 40);
    expect(readImageHeader(jpg)).toEqual({ ok: false, problem: { kind: 'truncated', format: 'jpeg' } });
    expect(readImageHeader(photo('chelsea.png').subarray(0, 20))).toEqual({
      ok: false,
      problem: { kind: 'truncated', format: 'png' },
    });
    expect(readImageHeader(photo('chelsea.png').subarray(0, 5))).toEqual({
      ok: false,
      problem: { kind: 'truncated', format: 'png' },
    });
  });

  it('says corrupt for a damaged or impossible header', () => {
    const bad = pngClaiming(100, 100);
    bad[20] ^= 1; // height changes, CRC no longer matches
    expect(readImageHeader(bad)).toMatchObject({
      ok: false,
      problem: { kind: 'corrupt', format: 'png', detail: /checksum/ },
    });
    expect(readImageHeader(pngClaiming(0, 10))).toMatchObject({
      ok: false,
      problem: { kind: 'corrupt', detail: /impossible size/ },
    });
    expect(readImageHeader(pngClaiming(10, 10, 3, 2))).toMatchObject({
      ok: false,
      problem: { kind: 'corrupt', detail: /bit depth/ },
    });
    const jpg = photo('rocket.jpg').slice();
    jpg[2 + 2 + 16] = 0x12; // the 0xFF of the second marker (after SOI and a 16-byte APP0)
    expect(readImageHeader(jpg)).toMatchObject({ ok: false, problem: { kind: 'corrupt', format: 'jpeg' } });
  });
});

describe('checkStructure', () => {
  it('finds a PNG cut in half', () => {
    const png = photo('chelsea.png');
    expect(checkStructure(png.subarray(0, png.length >> 1), 'png')).toEqual({ kind: 'truncated' });
    expect(checkStructure(png.subarray(0, png.length - 1), 'png')).toEqual({ kind: 'truncated' });
  });

  it('finds a JPEG without its end', () => {
    const jpg = photo('rocket.jpg');
    expect(checkStructure(jpg.subarray(0, jpg.length - 2), 'jpeg')).toEqual({ kind: 'truncated' });
    expect(checkStructure(jpg.subarray(0, 300), 'jpeg')).toEqual({ kind: 'truncated' });
    // Bytes appended after EOI (motion photos, trailers) are fine.
    expect(checkStructure(new Uint8Array([...jpg, 1, 2, 3, 4]), 'jpeg')).toBeNull();
  });

  it('refuses a PNG with no image data', () => {
    const png = pngClaiming(4, 4);
    const noIdat = new Uint8Array([...png.subarray(0, 33), ...png.subarray(45)]);
    expect(checkStructure(noIdat, 'png')).toMatchObject({ kind: 'corrupt' });
  });
});

describe('inspectImage', () => {
  /** The ImageError inspectImage throws, as [code, message]. */
  const refusal = (bytes: Uint8Array, mime?: string): [string, string] => {
    try {
      inspectImage(bytes, mime);
    } catch (e) {
      if (e instanceof ImageError) return [e.code, e.message];
      throw e;
    }
    throw new Error('expected an ImageError');
  };
  const bytes = (s: string) => new TextEncoder().encode(s);

  it('returns the same header readImageHeader reads', () => {
    const png = photo('chelsea.png');
    const r = readImageHeader(png);
    expect(r.ok && inspectImage(png)).toEqual(r.ok && r.header);
  });

  it('turns each header problem into an ImageError with a message', () => {
    expect(refusal(new Uint8Array(0))).toEqual(['empty', 'The file is empty (0 bytes).']);
    expect(refusal(bytes('Shopping list:\n- milk\n'), 'image/png')).toEqual([
      'not-an-image',
      'This file is not a JPEG, PNG or WebP image although it is labelled image/png (it looks like text).',
    ]);
    expect(refusal(Uint8Array.of(0x00, 0x13, 0x99, 0xfe, 0x00, 0x01))).toEqual([
      'not-an-image',
      'This file is not a JPEG, PNG or WebP image.',
    ]);
    expect(refusal(photo('chelsea.png').subarray(0, 20))).toEqual([
      'truncated',
      'The PNG file ends before its header is complete; it is truncated or damaged.',
    ]);
    expect(refusal(pngClaiming(0, 10))).toEqual([
      'corrupt',
      'The PNG file is damaged: the header gives an impossible size 0 × 10.',
    ]);
  });

  it('names the image formats it recognises but does not take', () => {
    const avif = Uint8Array.of(0, 0, 0, 0x18, ...bytes('ftypavif'), 0, 0, 0, 0);
    const tiff = Uint8Array.of(0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0);
    const bmp = new Uint8Array(30);
    bmp.set(bytes('BM'));
    for (const [file, name] of [
      [bytes('GIF89a\x01\x00\x01\x00'), 'GIF'],
      [avif, 'AVIF'],
      [tiff, 'TIFF'],
      [bmp, 'BMP'],
    ] as const) {
      expect(refusal(file)).toEqual([
        'unsupported-format',
        `${name} images are not supported; please use a JPEG, PNG or WebP file.`,
      ]);
    }
    // A video in the same ISO container is not an image format: "not an image".
    expect(refusal(Uint8Array.of(0, 0, 0, 0x18, ...bytes('ftypisom'), 0, 0, 0, 0))[0]).toBe('not-an-image');
  });

  it('refuses more than MAX_PIXELS (domain/limits.ts), and takes exactly that many', () => {
    const w = 8000;
    const h = MAX_PIXELS / w;
    expect(refusal(pngClaiming(w, h + 1))).toEqual([
      'too-large',
      `The image is ${w}×${h + 1} (${((w * (h + 1)) / 1e6).toFixed(1)} megapixels); ` +
        `the limit is ${MAX_PIXELS / 1e6} megapixels. Please use a smaller image.`,
    ]);
    expect(inspectImage(pngClaiming(w, h))).toMatchObject({ width: w, height: h });
    expect(() => checkPixelCount(w, h)).not.toThrow();
    expect(() => checkPixelCount(w, h + 1)).toThrow(ImageError);
  });
});
