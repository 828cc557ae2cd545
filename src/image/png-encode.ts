// A small PNG encoder: RGBA8, no filtering, with text chunks carrying the generation
// settings (what a person gets from the CLI's downloads). Deflate is injected: node:zlib in
// Node, CompressionStream in the browser. Chunk framing and the tEXt/iTXt layout come from
// png-text.ts, the one PNG chunk writer, which also splices text into the browser's PNGs.
import { PNG_SIGNATURE, pngChunk, textChunk, type PngTextEntry } from './png-text.ts';

export type Deflate = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/**
 * Encodes RGBA8 as a PNG with one text chunk per entry right after IHDR, where
 * insertPngText puts them too. `text` is keyword → text, or entries in the order to write.
 */
export async function encodePng(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  deflate: Deflate,
  text: Record<string, string> | readonly PngTextEntry[] = {},
): Promise<Uint8Array> {
  if (rgba.length !== width * height * 4)
    throw new Error(`encodePng: ${rgba.length} bytes for ${width}×${height} RGBA`);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filtering, no interlace
  const raw = new Uint8Array(height * (1 + width * 4));
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (1 + width * 4) + 1);
  const entries: readonly PngTextEntry[] = Array.isArray(text)
    ? text
    : Object.entries(text).map(([keyword, value]) => ({ keyword, text: value }));
  const parts = [
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    ...entries.map(textChunk),
    pngChunk('IDAT', await deflate(raw)),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
