import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bounded } from '../../test/bounded.ts';
import { MAX_JPEG_SCANS, MAX_PIXELS, NODE_JPEG_MAX_PIXELS } from '../domain/limits.ts';
import { checkStructure } from './image-header.ts';
import { validateUpload } from '../ui/upload-validation.ts';
import { decodeImage } from './decode-node.ts';
import {
  jpegClaiming,
  jpegWithoutScan,
  jpegWithScans,
  photoBytes,
  pngChunkAt,
  pngFromRaw,
  smallPngWithIdat,
} from '../../test/image-fixtures.ts';
import { ImageError } from './types.ts';

const rocket = photoBytes('rocket.jpg');
const chelsea = photoBytes('chelsea.png');

async function nodeRefusal(bytes: Uint8Array, label: string): Promise<ImageError> {
  const r = await bounded(label, () => decodeImage(bytes));
  if (r.ok) throw new Error(`${label}: decoded`);
  expect(r.error, label).toBeInstanceOf(ImageError);
  return r.error as ImageError;
}

const upload = (bytes: Uint8Array, name: string) =>
  validateUpload(
    {
      name,
      size: bytes.length,
      slice: (a, b) => new Blob([bytes.slice(a, b)]),
      arrayBuffer: () => Promise.resolve(bytes.slice().buffer),
    },
    () => Promise.resolve('bitmap'),
  );

describe('JPEG: refused from its structure before jpeg-js allocates', () => {
  it('a small file claiming millions of pixels (167 bytes for 6500×6150 cost 1.2 GiB)', async () => {
    const claim = jpegClaiming(rocket, 3000, 3000, 60);
    expect(claim.length).toBeLessThan(1200);
    const e = await nodeRefusal(claim, 'claims 3000×3000');
    expect(e.code).toBe('truncated');
    expect(e.message).toMatch(/too few for the 3000 × 3000 pixels/);
    expect(checkStructure(claim, 'jpeg')).toEqual({ kind: 'truncated' });
    const big = await nodeRefusal(jpegClaiming(rocket, 6500, 6150, 60), 'claims 6500×6150');
    expect(big.code).toBe('too-large');
  });

  it('thousands of scans (2,000 took 11–15 s and were accepted)', async () => {
    const many = jpegWithScans(rocket, 2000);
    const e = await nodeRefusal(many, '2000 scans');
    expect(e.code).toBe('too-large');
    expect(e.message).toMatch(new RegExp(`more than ${MAX_JPEG_SCANS} scans`));
    const structure = checkStructure(many, 'jpeg');
    expect(structure?.kind).toBe('corrupt');
    // A few extra scans are fine for the structure check.
    expect(checkStructure(jpegWithScans(rocket, 3), 'jpeg')).toBeNull();
  });

  it('over the Node size limit: says so, not "damaged" (a valid 40 MP JPEG was called truncated)', async () => {
    const e = await nodeRefusal(jpegClaiming(rocket, 8000, 5000, 60), '40 MP header');
    expect(e.code).toBe('too-large');
    expect(e.message).toMatch(
      new RegExp(`up to ${NODE_JPEG_MAX_PIXELS / 1e6} megapixels.*browser app \\(up to ${MAX_PIXELS / 1e6} megapixels`),
    );
  });

  it('a JPEG with no scan is refused in Node as the Photo step refuses it (it decoded to a flat image)', async () => {
    const none = jpegWithoutScan(rocket);
    const e = await nodeRefusal(none, 'no scan');
    expect(e.message).toMatch(/no image data \(no scan\)/);
    expect(checkStructure(none, 'jpeg')).not.toBeNull();
    expect((await upload(none, 'noscan.jpg')).ok).toBe(false);
  });

  it('the real JPEG still decodes', async () => {
    const r = await bounded('rocket.jpg', () => decodeImage(rocket));
    expect(r.ok).toBe(true);
  });
});

describe('PNG: bounded work for any shape, clear refusals', () => {
  it('a 1 × 10,000,000 PNG decodes in bounded time and memory (before the fix: 16 s; 1 × 40 M took 19–26 s)', async () => {
    const H = 10_000_000;
    const raw = new Uint8Array(H * 2);
    for (let y = 0; y < H; y++) raw[y * 2 + 1] = y & 0xff; // filter 0, one 8-bit grey sample
    const png = pngFromRaw(1, H, 8, 0, raw);
    const r = await bounded('1×10M', () => decodeImage(png), { ms: 6000, mib: 200 });
    if (!r.ok) throw r.error;
    const img = r.value;
    expect(img.height).toBe(H);
    for (const y of [0, 1, 255, 256, H - 1]) expect(img.data[y * 4], `row ${y}`).toBe(y & 0xff);
  });

  it('an oversized IDAT gets a PNG message, not node:zlib’s Buffer error', async () => {
    // compressed data larger than any 4×4 image needs
    const junk = await nodeRefusal(smallPngWithIdat(new Uint8Array(300_000).fill(7)), 'large IDAT');
    expect(junk.message).toMatch(/compressed image data \(300000 bytes\) is larger than a 4×4 image can need/);
    // a small zlib stream that inflates far past the image (the "256 MB IDAT" case)
    const bomb = await nodeRefusal(smallPngWithIdat(deflateSync(new Uint8Array(64 << 20))), 'zlib bomb');
    expect(bomb.code).toBe('corrupt');
    expect(bomb.message).toMatch(/decompresses to more than the 20 bytes a 4×4 image holds/);
    expect(bomb.message).not.toMatch(/Buffer/);
  });

  it('a bad checksum in image data is refused at the Photo step, as later by personalization', async () => {
    const bad = chelsea.slice();
    const idat = pngChunkAt(bad, 'IDAT');
    bad[idat + 8 + 100] ^= 0x40;
    const structure = checkStructure(bad, 'png');
    expect(structure).toEqual({ kind: 'corrupt', detail: expect.stringMatching(/checksum of its "IDAT" chunk/) });
    const result = await upload(bad, 'cat.png');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem.message).toMatch(/damaged PNG file: the checksum/);
    expect((await nodeRefusal(bad, 'bad CRC')).code).toBe('corrupt');
    expect((await upload(chelsea, 'cat.png')).ok).toBe(true);
  });

  it('a PNG without IEND is refused in Node as in the app', async () => {
    const cut = chelsea.subarray(0, chelsea.length - 12);
    expect((await nodeRefusal(cut, 'no IEND')).code).toBe('truncated');
    expect(checkStructure(cut, 'png')).toEqual({ kind: 'truncated' });
  });
});
