import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng } from './png.ts';
import { encodePng } from './png-encode.ts';

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

  it('refuses an invalid keyword and a size mismatch', async () => {
    await expect(encodePng(new Uint8Array(4), 1, 1, (d) => d, { '': 'x' })).rejects.toThrow(/keyword/);
    await expect(encodePng(new Uint8Array(3), 1, 1, (d) => d)).rejects.toThrow(/3 bytes for 1×1/);
  });
});
