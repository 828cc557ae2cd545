// A small PNG encoder: RGBA8, no filtering, with tEXt chunks carrying the generation
// settings (what a person gets from the CLI's and the app's downloads). Deflate is
// injected: node:zlib in Node, CompressionStream in the browser.
import { crc32 } from './crc32.ts';

export type Deflate = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** tEXt: Latin-1 keyword (1–79 chars), NUL, Latin-1 text; other characters become '?'. */
export function textChunk(keyword: string, text: string): Uint8Array {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || keyword !== keyword.trim()) {
    throw new Error(`PNG tEXt keyword ${JSON.stringify(keyword)} is not 1–79 printable Latin-1 characters`);
  }
  const latin1 = (s: string) => Uint8Array.from([...s].map((c) => (c.charCodeAt(0) <= 0xff ? c.charCodeAt(0) : 0x3f)));
  const k = latin1(keyword);
  const t = latin1(text);
  const data = new Uint8Array(k.length + 1 + t.length);
  data.set(k);
  data.set(t, k.length + 1);
  return chunk('tEXt', data);
}

export async function encodePng(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  deflate: Deflate,
  text: Record<string, string> = {},
): Promise<Uint8Array> {
  if (rgba.length !== width * height * 4) throw new Error(`encodePng: ${rgba.length} bytes for ${width}×${height} RGBA`);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filtering, no interlace
  const raw = new Uint8Array(height * (1 + width * 4));
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (1 + width * 4) + 1);
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk('IHDR', ihdr),
    ...Object.entries(text).map(([k, v]) => textChunk(k, v)),
    chunk('IDAT', await deflate(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
