// The PNG both shells save: node:zlib (an independent inflater) gets the pixels back exactly,
// the chunks are in order with valid CRCs, the settings travel as the app has always written
// them (iTXt where Latin-1 is not enough), and the bytes depend on nothing but the input.
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../image/png.ts';
import { listPngChunks, readPngText } from '../image/png-text.ts';
import type { GenerationRecord } from './generation-metadata.ts';
import { generationPng, pngWithText } from './generation-png.ts';

const w = 48;
const h = 32;
const rgba = new Uint8ClampedArray(w * h * 4);
for (let y = 0; y < h; y++)
  for (let x = 0; x < w; x++) rgba.set([(x * 255) / w, (y * 255) / h, (x * y) & 0xff, 255], 4 * (y * w + x));
const image = { width: w, height: h, rgba, seed: 1234 };

const record: GenerationRecord = {
  prompt: 'a watercolor of S* in Paris — café ☕',
  negativePrompt: 'blurry',
  steps: 20,
  guidance: 7.5,
  sampler: 'dpmpp-2m',
  blend: 0.25,
  batch: 1,
  seed: 1234,
  runtime: 'engine',
  rng: 'philox',
  width: w,
  height: h,
  packId: 'tiny',
  concept: null,
  createdAt: 0,
};

describe('generationPng', () => {
  it('decodes back to the same pixels with node:zlib', async () => {
    const png = await generationPng(image, record);
    const back = decodePng(png, (d, max) => inflateSync(d, { maxOutputLength: max }));
    expect([back.width, back.height]).toEqual([w, h]);
    expect(Buffer.from(back.data).equals(Buffer.from(rgba))).toBe(true);
  });
  it('writes IHDR first, IEND last, valid CRCs, and the settings', async () => {
    const png = await generationPng(image, record);
    const chunks = listPngChunks(png);
    expect(chunks.every((c) => c.crcOk)).toBe(true);
    expect(chunks[0].type).toBe('IHDR');
    expect(chunks.at(-1)!.type).toBe('IEND');
    expect(chunks.filter((c) => c.type === 'iTXt')).toHaveLength(2);
    const text = readPngText(png);
    expect(text.map((t) => t.keyword)).toEqual(['parameters', 'Software', 'likeness']);
    expect(text[0].text).toMatch(
      /^a watercolor of S\* in Paris — café ☕\nNegative prompt: blurry\nSteps: 20, Sampler: DPM\+\+ 2M/,
    );
    expect(JSON.parse(text[2].text)).toEqual(record);
  });
  it('gives the same bytes for the same input', async () => {
    expect(await generationPng(image, record)).toEqual(
      await generationPng({ ...image, rgba: rgba.slice() }, { ...record }),
    );
    expect(await pngWithText(image)).toEqual(await pngWithText(image, []));
  });
});
