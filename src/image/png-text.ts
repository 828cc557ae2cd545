// PNG chunks, written and walked, and the text chunks built on them: the one place that
// frames a chunk (length · type · data · CRC-32 over type+data, PNG spec §5.3). The encoder
// (png-encode.ts) writes every chunk with pngChunk; insertPngText splices text into a PNG
// someone else encoded (the browser's encoder cannot add any). walkPngChunks is the one
// chunk walk: the decoder (png.ts), the Photo step's structure check (image-header.ts) and
// listPngChunks (storage) each build on it. Text (§11.3.4) is tEXt when Latin-1, iTXt
// (UTF-8, uncompressed) when the text has characters Latin-1 lacks; readPngText reads both.
import { crc32 } from './crc32.ts';
import { BadInputError } from '../domain/errors.ts';

export interface PngTextEntry {
  keyword: string;
  text: string;
}

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export class PngFormatError extends BadInputError {
  constructor(message: string) {
    super(message);
    this.name = 'PngFormatError';
  }
}

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

/** One chunk: 4-byte big-endian length, 4-byte type, data, CRC of type+data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new PngFormatError(`invalid chunk type ${JSON.stringify(type)}`);
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

// Keywords: 1–79 Latin-1 printable characters, no leading, trailing or doubled spaces.
function checkKeyword(k: string): void {
  const ok =
    k.length >= 1 &&
    k.length <= 79 &&
    !/^ | $| {2}/.test(k) &&
    [...k].every((ch) => {
      const c = ch.charCodeAt(0);
      return (c >= 32 && c <= 126) || (c >= 161 && c <= 255);
    });
  if (!ok) throw new PngFormatError(`invalid PNG text keyword ${JSON.stringify(k)}`);
}

const isLatin1 = (s: string) => [...s].every((ch) => ch.codePointAt(0)! <= 0xff && ch !== '\0');

/** The chunk for one entry: tEXt when the text is Latin-1, iTXt (UTF-8) otherwise. */
export function textChunk({ keyword, text }: PngTextEntry): Uint8Array {
  checkKeyword(keyword);
  if (isLatin1(text)) {
    const data = new Uint8Array(keyword.length + 1 + text.length);
    data.set(ascii(keyword), 0);
    data.set(ascii(text), keyword.length + 1);
    return pngChunk('tEXt', data);
  }
  // keyword \0 compression-flag(0) compression-method(0) language-tag \0 translated-keyword \0 text
  const utf8 = new TextEncoder().encode(text.replaceAll('\0', ''));
  const data = new Uint8Array(keyword.length + 5 + utf8.length);
  data.set(ascii(keyword), 0);
  data.set(utf8, keyword.length + 5);
  return pngChunk('iTXt', data);
}

export interface PngChunkInfo {
  type: string;
  /** Offset of the chunk's length field. */
  offset: number;
  length: number;
  crcOk: boolean;
}

/** One step of walkPngChunks. */
export type PngChunkStep =
  | ({ kind: 'chunk' } & PngChunkInfo)
  /**
   * The bytes end inside the chunk at `offset`: inside its 8-byte length and type (`type`
   * and `length` null), or inside its data or CRC.
   */
  | { kind: 'cut'; offset: number; type: string | null; length: number | null };

/**
 * The one walk over a PNG's chunks, from `at` (just past the signature) through IEND, each
 * chunk's CRC checked. It ends after IEND, at the exact end of the bytes, or with one 'cut'
 * step. It judges nothing else: the decoder (png.ts), the Photo step's structure check
 * (image-header.ts) and listPngChunks each decide what a step means for them.
 */
export function* walkPngChunks(png: Uint8Array, at = 8): Generator<PngChunkStep, void, undefined> {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  while (at < png.length) {
    if (at + 8 > png.length) {
      yield { kind: 'cut', offset: at, type: null, length: null };
      return;
    }
    const length = dv.getUint32(at);
    const type = String.fromCharCode(png[at + 4], png[at + 5], png[at + 6], png[at + 7]);
    if (at + 12 + length > png.length) {
      yield { kind: 'cut', offset: at, type, length };
      return;
    }
    const crcOk = crc32(png, at + 4, at + 8 + length) === dv.getUint32(at + 8 + length);
    yield { kind: 'chunk', type, offset: at, length, crcOk };
    at += 12 + length;
    if (type === 'IEND') return;
  }
}

/** Walks the chunk list; throws on a missing signature or a chunk running past the end. */
export function listPngChunks(png: Uint8Array): PngChunkInfo[] {
  if (png.length < 8 || PNG_SIGNATURE.some((b, i) => png[i] !== b))
    throw new PngFormatError('not a PNG (bad signature)');
  const chunks: PngChunkInfo[] = [];
  for (const step of walkPngChunks(png)) {
    if (step.kind === 'cut') {
      if (step.type === null || step.offset + 12 > png.length)
        throw new PngFormatError(`chunk at byte ${step.offset} is cut short`);
      throw new PngFormatError(`${step.type} chunk at byte ${step.offset} runs past the end of the file`);
    }
    const { type, offset, length, crcOk } = step;
    chunks.push({ type, offset, length, crcOk });
  }
  return chunks;
}

/** A copy of `png` with one text chunk per entry right after IHDR (so readers find them before the pixels). */
export function insertPngText(png: Uint8Array, entries: readonly PngTextEntry[]): Uint8Array {
  const chunks = listPngChunks(png);
  if (chunks[0]?.type !== 'IHDR') throw new PngFormatError('PNG does not start with IHDR');
  if (chunks.at(-1)?.type !== 'IEND') throw new PngFormatError('PNG has no IEND chunk');
  const inserted = entries.map(textChunk);
  const cut = chunks[0].offset + 12 + chunks[0].length;
  const extra = inserted.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(png.length + extra);
  out.set(png.subarray(0, cut), 0);
  let at = cut;
  for (const c of inserted) {
    out.set(c, at);
    at += c.length;
  }
  out.set(png.subarray(cut), at);
  return out;
}

/** Every tEXt and uncompressed iTXt entry, in file order. */
export function readPngText(png: Uint8Array): PngTextEntry[] {
  const latin1 = (b: Uint8Array) => {
    let s = '';
    for (const x of b) s += String.fromCharCode(x);
    return s;
  };
  const out: PngTextEntry[] = [];
  for (const c of listPngChunks(png)) {
    if (c.type !== 'tEXt' && c.type !== 'iTXt') continue;
    const data = png.subarray(c.offset + 8, c.offset + 8 + c.length);
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const keyword = latin1(data.subarray(0, nul));
    if (c.type === 'tEXt') {
      out.push({ keyword, text: latin1(data.subarray(nul + 1)) });
      continue;
    }
    if (data[nul + 1] !== 0) continue; // compressed iTXt: not written here
    const lang = data.indexOf(0, nul + 3);
    const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
    if (translated < 0) continue;
    out.push({ keyword, text: new TextDecoder().decode(data.subarray(translated + 1)) });
  }
  return out;
}
