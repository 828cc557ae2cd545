import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_MEGAPIXELS, validateUpload, type FileLike } from './upload-validation.ts';

const photo = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../../shared/data/photos/${name}`, import.meta.url)));
const file = (name: string, bytes: Uint8Array): FileLike =>
  Object.assign(new Blob([bytes as Uint8Array<ArrayBuffer>]), { name });

/** Records whether decoding was attempted: oversized and broken files must never reach it. */
function decoder(fails = false) {
  const calls: string[] = [];
  return {
    calls,
    decode: async (bytes: Uint8Array, mime: string) => {
      calls.push(mime);
      if (fails) throw new DOMException('The source image could not be decoded.', 'InvalidStateError');
      return { decodedBytes: bytes.length };
    },
  };
}

function ihdrPng(w: number, h: number): Uint8Array {
  const ihdr = Buffer.alloc(17);
  ihdr.write('IHDR', 0, 'latin1');
  ihdr.writeUInt32BE(w, 4);
  ihdr.writeUInt32BE(h, 8);
  ihdr[12] = 8;
  ihdr[13] = 6;
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlibCrc32(ihdr));
  const len = Buffer.from([0, 0, 0, 13]);
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), len, ihdr, crc]));
}

describe('validateUpload', () => {
  it('accepts real photos and hands the whole file to the decoder', async () => {
    for (const name of ['chelsea.png', 'grace_hopper.jpg']) {
      const bytes = photo(name);
      const d = decoder();
      const r = await validateUpload(file(name, bytes), d.decode);
      expect(r.ok, name).toBe(true);
      if (!r.ok) continue;
      expect(r.upload.bytes.length).toBe(bytes.length);
      expect(r.upload.bitmap).toEqual({ decodedBytes: bytes.length });
      expect(d.calls).toEqual([r.upload.header.mime]);
    }
  });

  it('refuses a zero-byte file', async () => {
    const d = decoder();
    const r = await validateUpload(file('empty.jpg', new Uint8Array(0)), d.decode);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'empty', message: '“empty.jpg” is empty (0 bytes).' } });
    expect(d.calls).toEqual([]);
  });

  it('refuses a text file named .png by its contents', async () => {
    const d = decoder();
    const r = await validateUpload(file('notes.png', new TextEncoder().encode('not really a picture\n')), d.decode);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'not-image' } });
    if (!r.ok) expect(r.problem.message).toBe('“notes.png” is not a PNG, JPEG or WebP image — it looks like text.');
    expect(d.calls).toEqual([]);
  });

  it('refuses more than 40 megapixels from the header alone', async () => {
    const d = decoder();
    const r = await validateUpload(file('huge.png', ihdrPng(10000, 5000)), d.decode);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'too-large' } });
    if (!r.ok) {
      expect(r.problem.message).toBe(
        `“huge.png” is 10000 × 5000 pixels (50.0 megapixels); the limit is ${MAX_MEGAPIXELS} megapixels.`,
      );
      expect(r.problem.hint).toMatch(/8944 × 4472/);
    }
    expect(d.calls).toEqual([]);
    // Exactly 40 MP passes the size check (and then fails on structure: it has no pixels).
    const at = await validateUpload(file('edge.png', ihdrPng(8000, 5000)), d.decode);
    expect(at).toMatchObject({ ok: false, problem: { kind: 'truncated' } });
  });

  it('refuses a truncated PNG before decoding it', async () => {
    const png = photo('chelsea.png');
    const d = decoder();
    const r = await validateUpload(file('chelsea.png', png.subarray(0, png.length >> 1)), d.decode);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'truncated' } });
    if (!r.ok)
      expect(r.problem.message).toBe('“chelsea.png” is cut short: the PNG file ends before its image data does.');
    expect(d.calls).toEqual([]);
  });

  it('reports a decode failure as a damaged file', async () => {
    const r = await validateUpload(file('odd.jpg', photo('rocket.jpg')), decoder(true).decode);
    expect(r).toMatchObject({ ok: false, problem: { kind: 'corrupt' } });
    if (!r.ok) expect(r.problem.message).toMatch(/“odd.jpg” is a damaged JPEG file: the browser could not decode/);
  });

  it('reports a file that cannot be read', async () => {
    const broken: FileLike = {
      name: 'gone.png',
      size: 100,
      slice: () => ({ arrayBuffer: () => Promise.reject(new Error('NotReadableError: file was moved')) }),
      arrayBuffer: () => Promise.reject(new Error('unreachable')),
    };
    const r = await validateUpload(broken, decoder().decode);
    expect(r).toMatchObject({
      ok: false,
      problem: { kind: 'unreadable', message: '“gone.png” could not be read: NotReadableError: file was moved.' },
    });
  });
});
