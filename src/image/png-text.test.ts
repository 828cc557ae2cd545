import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  insertPngText,
  listPngChunks,
  pngChunk,
  PngFormatError,
  readPngText,
  textChunk,
  walkPngChunks,
} from './png-text.ts';

const chelsea = new Uint8Array(readFileSync(new URL('../../../shared/data/photos/chelsea.png', import.meta.url)));

// An independent chunk walker: raw DataView reads and node:zlib's CRC, nothing from png-text.ts.
function rawChunks(png: Uint8Array) {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: { type: string; data: Uint8Array; crc: number }[] = [];
  for (let at = 8; at < png.length;) {
    const len = dv.getUint32(at);
    out.push({
      type: Buffer.from(png.subarray(at + 4, at + 8)).toString('latin1'),
      data: png.subarray(at + 8, at + 8 + len),
      crc: dv.getUint32(at + 8 + len),
    });
    at += 12 + len;
  }
  return out;
}
const crcOf = (type: string, data: Uint8Array) => zlibCrc32(Buffer.concat([Buffer.from(type, 'latin1'), data]));

describe('pngChunk', () => {
  it('gives IEND its well-known CRC', () => {
    const iend = pngChunk('IEND', new Uint8Array(0));
    expect([...iend]).toEqual([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  });
});

describe('insertPngText', () => {
  const entries = [
    { keyword: 'parameters', text: 'a watercolor of S* in Paris\nSteps: 12, Seed: 42' },
    { keyword: 'Software', text: 'Likeness' },
    { keyword: 'Comment', text: 'café — 猫 🐱' }, // not Latin-1: becomes iTXt
  ];
  const out = insertPngText(chelsea, entries);

  it('writes chunks whose CRCs an independent CRC accepts', () => {
    const chunks = rawChunks(out);
    for (const c of chunks) expect(c.crc, c.type).toBe(crcOf(c.type, c.data));
    expect(chunks.map((c) => c.type).slice(0, 4)).toEqual(['IHDR', 'tEXt', 'tEXt', 'iTXt']);
    expect(chunks.at(-1)!.type).toBe('IEND');
  });

  it('lays out tEXt and iTXt as the PNG spec says', () => {
    const [, t1, , it1] = rawChunks(out);
    expect(Buffer.from(t1.data).toString('latin1')).toBe(`parameters\0${entries[0].text}`);
    const k = Buffer.from('Comment\0', 'latin1');
    expect(Buffer.from(it1.data.subarray(0, k.length)).equals(k)).toBe(true);
    // compression flag 0, method 0, empty language tag, empty translated keyword, UTF-8 text
    expect([...it1.data.subarray(k.length, k.length + 4)]).toEqual([0, 0, 0, 0]);
    expect(Buffer.from(it1.data.subarray(k.length + 4)).toString('utf8')).toBe(entries[2].text);
  });

  it('keeps every original chunk byte for byte', () => {
    const before = rawChunks(chelsea);
    const after = rawChunks(out).filter((_, i) => i < 1 || i > 3);
    expect(after.length).toBe(before.length);
    after.forEach((c, i) => {
      expect(c.type).toBe(before[i].type);
      expect(Buffer.from(c.data).equals(Buffer.from(before[i].data))).toBe(true);
    });
    expect(out.length).toBe(
      chelsea.length +
        rawChunks(out)
          .slice(1, 4)
          .reduce((n, c) => n + 12 + c.data.length, 0),
    );
  });

  it('reads back what it wrote', () => {
    // chelsea.png carries text of its own, after ours.
    const original = readPngText(chelsea);
    expect(original.length).toBeGreaterThan(0);
    expect(readPngText(out)).toEqual([...entries, ...original]);
    expect(listPngChunks(out).every((c) => c.crcOk)).toBe(true);
  });

  it('refuses bad keywords and non-PNG input', () => {
    expect(() => textChunk({ keyword: '', text: 'x' })).toThrow(PngFormatError);
    expect(() => textChunk({ keyword: 'x'.repeat(80), text: 'x' })).toThrow(/keyword/);
    expect(() => textChunk({ keyword: ' lead', text: 'x' })).toThrow(/keyword/);
    expect(() => textChunk({ keyword: 'a\0b', text: 'x' })).toThrow(/keyword/);
    expect(() => insertPngText(new Uint8Array([1, 2, 3]), entries)).toThrow(/signature/);
    expect(() => insertPngText(chelsea.subarray(0, 1000), entries)).toThrow(/past the end/);
  });

  it('notices a damaged checksum', () => {
    const bad = out.slice();
    bad[45] ^= 0xff; // inside the first inserted chunk's data (IHDR ends at 33)
    expect(listPngChunks(bad)[1]).toMatchObject({ type: 'tEXt', crcOk: false });
  });
});

describe('walkPngChunks', () => {
  const steps = (png: Uint8Array) => [...walkPngChunks(png)];

  it('yields what the independent walker finds, with CRCs checked, and stops after IEND', () => {
    const withTrailer = new Uint8Array([...chelsea, 1, 2, 3]);
    const walked = steps(withTrailer);
    const raw = rawChunks(chelsea);
    expect(walked.map((s) => s.type)).toEqual(raw.map((c) => c.type));
    expect(walked.every((s) => s.kind === 'chunk' && s.crcOk)).toBe(true);
    expect(walked.map((s) => s.length)).toEqual(raw.map((c) => c.data.length));
  });

  it('ends with one cut step inside a chunk header or its data', () => {
    const ihdrEnd = 8 + 25;
    expect(steps(chelsea.subarray(0, ihdrEnd + 5)).at(-1)).toEqual({
      kind: 'cut',
      offset: ihdrEnd,
      type: null,
      length: null,
    });
    const cutInData = steps(chelsea.subarray(0, ihdrEnd + 10)).at(-1);
    expect(cutInData).toMatchObject({ kind: 'cut', offset: ihdrEnd, type: rawChunks(chelsea)[1].type });
    // At the exact end of the bytes the walk simply ends: IEND's absence is the caller's call.
    expect(steps(chelsea.subarray(0, ihdrEnd)).map((s) => s.kind)).toEqual(['chunk']);
  });

  it('reports a bad checksum without stopping', () => {
    const bad = chelsea.slice();
    bad[20] ^= 1; // inside IHDR's data
    const walked = steps(bad);
    expect(walked[0]).toMatchObject({ type: 'IHDR', crcOk: false });
    expect(walked.at(-1)).toMatchObject({ type: 'IEND', crcOk: true });
  });
});
