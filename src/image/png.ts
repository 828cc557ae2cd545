// PNG decoder (ISO/IEC 15948 / W3C PNG 3rd edition) to 8-bit RGBA: every colour type and bit
// depth, tRNS transparency, Adam7 interlacing, CRC checks on every chunk. The zlib inflate
// is passed in (node:zlib in Node); the browser path decodes with createImageBitmap instead.
// Colour management (gAMA, iCCP, sRGB, cHRM) is not applied: samples are returned as stored.
import { MAX_PNG_CHUNKS } from '../domain/limits.ts';
import { checkPixelCount, sniffFormat } from './image-header.ts';
import { walkPngChunks } from './png-text.ts';
import { ImageError, newImage, type RgbaImage } from './types.ts';

/** Inflates a zlib stream; must throw if the output would exceed `maxOutputLength` bytes. */
export type Inflate = (data: Uint8Array, maxOutputLength: number) => Uint8Array;

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** Raw TIFF bytes of an eXIf chunk, if present (for EXIF orientation). */
  exif: Uint8Array | null;
}

const u32be = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

// Samples per pixel by colour type, and the bit depths each allows.
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

// Adam7 passes: [x0, y0, dx, dy].
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

const corrupt = (what: string) => new ImageError('corrupt', `The PNG file is damaged: ${what}.`);
const truncated = (what: string) => new ImageError('truncated', `The PNG file is truncated: ${what}.`);

interface Chunk {
  type: string;
  data: Uint8Array;
}

/** Splits the file into CRC-checked chunks, stopping at IEND; checks IHDR and the size limit first. */
function readChunks(bytes: Uint8Array): { info: PngInfo; chunks: Chunk[] } {
  const chunks: Chunk[] = [];
  let info: PngInfo | null = null;
  let ended = false;
  for (const step of walkPngChunks(bytes)) {
    if (chunks.length >= MAX_PNG_CHUNKS) throw corrupt(`it has more than ${MAX_PNG_CHUNKS} chunks`);
    const { type, offset: p, length } = step;
    if (type === null || length === null) throw truncated('it ends inside a chunk header');
    if (length > 0x7fffffff || !/^[A-Za-z]{4}$/.test(type)) throw corrupt(`invalid chunk at byte ${p}`);
    if (step.kind === 'cut') throw truncated(`it ends inside the ${type} chunk`);
    if (!step.crcOk) throw corrupt(`checksum mismatch in the ${type} chunk at byte ${p}`);
    const data = bytes.subarray(p + 8, p + 8 + length);
    if (info === null) {
      if (type !== 'IHDR') throw corrupt('the first chunk is not IHDR');
      info = parseHeader(data);
      continue;
    }
    if (type === 'IEND') {
      ended = true;
      break;
    }
    if (type === 'eXIf') info.exif = data;
    chunks.push({ type, data });
  }
  if (!ended || info === null) {
    // A missing IEND is refused, as the app's Photo step does (image/image-header.ts): the file
    // was cut short, and whatever image data there is may be incomplete.
    if (chunks.some((c) => c.type === 'IDAT')) throw truncated('it ends without its IEND chunk');
    throw truncated(chunks.length === 0 ? 'it has no header chunk' : 'it ends before the image data');
  }
  return { info, chunks };
}

function parseHeader(d: Uint8Array): PngInfo {
  if (d.length !== 13) throw corrupt('the IHDR chunk has the wrong length');
  const width = u32be(d, 0);
  const height = u32be(d, 4);
  const [bitDepth, colorType, compression, filter, interlace] = d.subarray(8, 13);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw corrupt(`the header gives an invalid size ${width}×${height}`);
  }
  // Refuse gigantic images before touching the image data.
  checkPixelCount(width, height);
  if (!(colorType in CHANNELS) || !DEPTHS[colorType].includes(bitDepth)) {
    throw corrupt(`colour type ${colorType} with bit depth ${bitDepth} is not a valid combination`);
  }
  if (compression !== 0 || filter !== 0 || interlace > 1)
    throw corrupt('unknown compression, filter or interlace method');
  return { width, height, bitDepth, colorType, interlaced: interlace === 1, exif: null };
}

/** Reverses the per-row filters of one (sub)image in place; returns the offset after it. */
function unfilter(buf: Uint8Array, start: number, rows: number, stride: number, bpp: number): number {
  let prev = -1; // offset of the previous row's first byte, −1 for none
  let p = start;
  for (let y = 0; y < rows; y++) {
    const type = buf[p];
    const row = p + 1;
    switch (type) {
      case 0:
        break;
      case 1: // Sub
        for (let i = bpp; i < stride; i++) buf[row + i] = (buf[row + i] + buf[row + i - bpp]) & 0xff;
        break;
      case 2: // Up
        if (prev >= 0) for (let i = 0; i < stride; i++) buf[row + i] = (buf[row + i] + buf[prev + i]) & 0xff;
        break;
      case 3: // Average
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? buf[row + i - bpp] : 0;
          const b = prev >= 0 ? buf[prev + i] : 0;
          buf[row + i] = (buf[row + i] + ((a + b) >> 1)) & 0xff;
        }
        break;
      case 4: // Paeth
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? buf[row + i - bpp] : 0;
          const b = prev >= 0 ? buf[prev + i] : 0;
          const c = i >= bpp && prev >= 0 ? buf[prev + i - bpp] : 0;
          const pa = Math.abs(b - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + b - 2 * c);
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          buf[row + i] = (buf[row + i] + pred) & 0xff;
        }
        break;
      default:
        throw corrupt(`unknown row filter type ${type}`);
    }
    prev = row;
    p = row + stride;
  }
  return p;
}

interface Palette {
  rgb: Uint8Array;
  alpha: Uint8Array;
  entries: number;
}

/**
 * Writes the unfiltered rows of one (sub)image — `h` rows of `w` pixels starting at `start`,
 * `stride` bytes each after a filter byte — to RGBA at output pixels (x0 + i·dx, y0 + j·dy).
 * One call per pass, not per row: a 1 × 40,000,000 image is 40 million rows, and per-row
 * closures made it take a minute.
 */
function emitPass(
  buf: Uint8Array,
  start: number,
  pass: { w: number; h: number; stride: number },
  origin: readonly [number, number, number, number],
  width: number,
  info: PngInfo,
  palette: Palette | null,
  key: number[] | null,
  out: Uint8ClampedArray,
): void {
  const { bitDepth: depth, colorType } = info;
  const channels = CHANNELS[colorType];
  const [x0, y0, dx, dy] = origin;
  let row = 0;
  const sample = (i: number): number => {
    // Sample i of the row at the file's bit depth.
    if (depth === 8) return buf[row + i];
    if (depth === 16) return (buf[row + 2 * i] << 8) | buf[row + 2 * i + 1];
    const perByte = 8 / depth;
    const byte = buf[row + Math.floor(i / perByte)];
    const shift = 8 - depth * ((i % perByte) + 1);
    return (byte >> shift) & ((1 << depth) - 1);
  };
  const to8 =
    depth === 16
      ? (v: number) => Math.round(v / 257)
      : depth === 8
        ? (v: number) => v
        : (v: number) => (v * 255) / ((1 << depth) - 1);
  const opaque = depth === 16 ? 65535 : 255;
  const w = pass.w;
  for (let y = 0; y < pass.h; y++) {
    row = start + y * (pass.stride + 1) + 1;
    emit(((y0 + y * dy) * width + x0) * 4);
  }

  function emit(outBase: number): void {
    for (let x = 0; x < w; x++) {
      const o = outBase + x * dx * 4;
      const s = x * channels;
      let r: number, g: number, b: number, a: number;
      switch (colorType) {
        case 0:
          r = g = b = sample(s);
          a = key !== null && r === key[0] ? 0 : opaque;
          break;
        case 2:
          r = sample(s);
          g = sample(s + 1);
          b = sample(s + 2);
          a = key !== null && r === key[0] && g === key[1] && b === key[2] ? 0 : opaque;
          break;
        case 3: {
          const idx = sample(s);
          if (idx >= palette!.entries)
            throw corrupt(`palette index ${idx} is outside the ${palette!.entries}-entry palette`);
          out[o] = palette!.rgb[3 * idx];
          out[o + 1] = palette!.rgb[3 * idx + 1];
          out[o + 2] = palette!.rgb[3 * idx + 2];
          out[o + 3] = palette!.alpha[idx];
          continue;
        }
        case 4:
          r = g = b = sample(s);
          a = sample(s + 1);
          break;
        default:
          r = sample(s);
          g = sample(s + 1);
          b = sample(s + 2);
          a = sample(s + 3);
      }
      out[o] = to8(r);
      out[o + 1] = to8(g);
      out[o + 2] = to8(b);
      out[o + 3] = depth === 16 ? Math.round(a / 257) : a === opaque ? 255 : to8(a);
    }
  }
}

/** Reads the header only (after the signature check); throws ImageError like decodePng. */
export function readPngInfo(bytes: Uint8Array): PngInfo {
  return readChunks(bytes).info;
}

/** Decodes a PNG file to RGBA8. Throws ImageError (truncated / corrupt / too-large). */
export function decodePng(bytes: Uint8Array, inflate: Inflate): RgbaImage & { info: PngInfo } {
  if (sniffFormat(bytes) !== 'png') {
    throw new ImageError('not-an-image', 'This file is not a PNG image.');
  }
  const { info, chunks } = readChunks(bytes);
  const { width, height, bitDepth, colorType } = info;

  let palette: Palette | null = null;
  let key: number[] | null = null;
  let idatSize = 0;
  let idatState: 'before' | 'in' | 'after' = 'before';
  for (const c of chunks) {
    if (c.type === 'IDAT') {
      if (idatState === 'after') throw corrupt('its image data chunks are not consecutive');
      idatState = 'in';
      idatSize += c.data.length;
      continue;
    }
    if (idatState === 'in') idatState = 'after';
    if (c.type === 'PLTE') {
      if (c.data.length % 3 !== 0 || c.data.length === 0 || c.data.length > 768) throw corrupt('invalid palette');
      palette = { rgb: c.data, alpha: new Uint8Array(c.data.length / 3).fill(255), entries: c.data.length / 3 };
    } else if (c.type === 'tRNS') {
      if (colorType === 3) {
        if (!palette) throw corrupt('transparency comes before the palette');
        palette.alpha.set(c.data.subarray(0, palette.entries));
      } else if (colorType === 0 && c.data.length >= 2) {
        key = [(c.data[0] << 8) | c.data[1]];
      } else if (colorType === 2 && c.data.length >= 6) {
        key = [0, 2, 4].map((i) => (c.data[i] << 8) | c.data[i + 1]);
      }
    } else if (c.type[0] >= 'A' && c.type[0] <= 'Z' && c.type !== 'IHDR') {
      throw new ImageError('unsupported-format', `The PNG file uses an unknown critical chunk "${c.type}".`);
    }
  }
  if (idatSize === 0) throw truncated('it has no image data');
  if (colorType === 3 && !palette) throw corrupt('a palette image has no palette');

  const bitsPerPixel = CHANNELS[colorType] * bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = info.interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const);
  const sizes = passes.map(([x0, y0, dx, dy]) => {
    const w = Math.ceil((width - x0) / dx);
    const h = Math.ceil((height - y0) / dy);
    return w > 0 && h > 0 ? { w, h, stride: Math.ceil((w * bitsPerPixel) / 8) } : null;
  });
  const expected = sizes.reduce((n, s) => n + (s ? s.h * (s.stride + 1) : 0), 0);
  // zlib never grows data by more than its stored-block overhead (5 bytes per 64 KiB) and a
  // fixed-Huffman encoder by 1/8; more compressed data than that is not this image's.
  if (idatSize > expected + Math.ceil(expected / 8) + 65536) {
    throw corrupt(`its compressed image data (${idatSize} bytes) is larger than a ${width}×${height} image can need`);
  }

  const idat = new Uint8Array(idatSize);
  let q = 0;
  for (const c of chunks) {
    if (c.type === 'IDAT') {
      idat.set(c.data, q);
      q += c.data.length;
    }
  }

  let raw: Uint8Array;
  try {
    raw = inflate(idat, expected + 4096);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // node:zlib's answer to output beyond maxOutputLength (a RangeError naming Buffer sizes).
    if (e instanceof RangeError || /larger than|maxOutputLength/i.test(msg))
      throw corrupt(`its image data decompresses to more than the ${expected} bytes a ${width}×${height} image holds`);
    if (/unexpected end|incomplete|truncated|buffer error/i.test(msg))
      throw truncated('its compressed image data ends early');
    throw corrupt(`its compressed image data cannot be read (${msg})`);
  }
  if (raw.length < expected) throw truncated(`it holds ${raw.length} of ${expected} bytes of image data`);

  const img = newImage(width, height);
  let p = 0;
  passes.forEach(([x0, y0, dx, dy], k) => {
    const s = sizes[k];
    if (!s) return;
    const start = p;
    p = unfilter(raw, start, s.h, s.stride, bpp);
    emitPass(raw, start, s, [x0, y0, dx, dy], width, info, palette, key, img.data);
  });
  return { ...img, info };
}
