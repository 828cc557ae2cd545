import { crc32 as zlibCrc32, deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng } from './png.ts';
import { encodePng } from './png-encode.ts';
import { readPngText } from './png-text.ts';

describe('PNG encoder', () => {
  it('round-trips RGBA through our decoder (CRCs checked) and carries tEXt settings', async () => {
    const w = 7;
    const h = 5;
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37) & 255);
    const png = await encodePng(rgba, w, h, (d) => deflateSync(d), { prompt: 'a photo of S*', seed: '42' });
    const out = decodePng(png, (d, max) => inflateSync(d, { maxOutputLength: max }));
    expect([out.width, out.height]).toEqual([w, h]);
    expect([...out.data]).toEqual([...rgba]);
    const text = new TextDecoder('latin1').decode(png);
    expect(text).toContain('tEXtprompt\0a photo of S*');
    expect(text).toContain('tEXtseed\x0042');
  });

  it('writes text Latin-1 lacks as iTXt, readable back, with checksums node:zlib accepts', async () => {
    const text = { prompt: 'S* in Kyōto, 猫 🐱', Software: 'Likeness' };
    const png = await encodePng(new Uint8Array(4), 1, 1, (d) => deflateSync(d), text);
    expect(readPngText(png)).toEqual([
      { keyword: 'prompt', text: text.prompt },
      { keyword: 'Software', text: 'Likeness' },
    ]);
    // An independent walk: every chunk's stored CRC equals node:zlib's over type + data.
    const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const types: string[] = [];
    for (let at = 8; at < png.length;) {
      const len = dv.getUint32(at);
      types.push(Buffer.from(png.subarray(at + 4, at + 8)).toString('latin1'));
      expect(dv.getUint32(at + 8 + len)).toBe(zlibCrc32(png.subarray(at + 4, at + 8 + len)));
      at += 12 + len;
    }
    expect(types).toEqual(['IHDR', 'iTXt', 'tEXt', 'IDAT', 'IEND']);
    // Entries in a list give the same file as the same keys in an object.
    const asList = await encodePng(new Uint8Array(4), 1, 1, (d) => deflateSync(d), readPngText(png));
    expect(Buffer.from(asList).equals(Buffer.from(png))).toBe(true);
  });

  it('refuses an invalid keyword and a size mismatch', async () => {
    await expect(encodePng(new Uint8Array(4), 1, 1, (d) => d, { '': 'x' })).rejects.toThrow(/keyword/);
    await expect(encodePng(new Uint8Array(4), 1, 1, (d) => d, { 'two  spaces': 'x' })).rejects.toThrow(/keyword/);
    await expect(encodePng(new Uint8Array(3), 1, 1, (d) => d)).rejects.toThrow(/3 bytes for 1×1/);
  });
});
