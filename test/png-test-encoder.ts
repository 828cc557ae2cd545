// A small PNG writer for tests: any colour type / bit depth, Adam7, all five row filters
// (applied forward, so the decoder's inverse filters are exercised), chosen chunk layout.
// Independent of src/image on purpose, down to its own bitwise CRC-32: it is the reference
// the decoder and the chunk reader are tested against, so it must not share their code.
import { deflateSync } from 'node:zlib';

export interface TestPngSpec {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  interlace?: boolean;
  /** Samples per pixel (1, 3, 1, 2, 4 by colour type), row-major, at the file's bit depth. */
  samples: ArrayLike<number>;
  palette?: [number, number, number][];
  trns?: Uint8Array;
  /** Extra chunks placed before IDAT. */
  extraChunks?: { type: string; data: Uint8Array }[];
  /** Split the zlib stream into this many IDAT chunks. */
  idatChunks?: number;
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

function crc(bytes: Uint8Array): number {
  // Bitwise CRC-32 (no table), reflected polynomial 0xEDB88320.
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
  return out;
}

export function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  d.set([bitDepth, colorType, 0, 0, interlace], 8);
  return chunk('IHDR', d);
}

export const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Packs one row of samples at the bit depth (MSB first for sub-byte depths). */
function packRow(samples: number[], depth: number): Uint8Array {
  if (depth === 16) return Uint8Array.from(samples.flatMap((s) => [s >> 8, s & 255]));
  if (depth === 8) return Uint8Array.from(samples);
  const out = new Uint8Array(Math.ceil((samples.length * depth) / 8));
  samples.forEach((s, i) => {
    const bit = i * depth;
    out[bit >> 3] |= s << (8 - depth - (bit & 7));
  });
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filters rows forward, cycling filter types 0…4 so every type appears. */
function filterRows(rows: Uint8Array[], bpp: number, firstType: number): Uint8Array {
  const out: number[] = [];
  rows.forEach((row, y) => {
    const type = (firstType + y) % 5;
    const prev = y > 0 ? rows[y - 1] : new Uint8Array(row.length);
    out.push(type);
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type];
      out.push((row[i] - pred) & 255);
    }
  });
  return Uint8Array.from(out);
}

export function encodeTestPng(spec: TestPngSpec): Uint8Array {
  const { width, height, colorType, bitDepth } = spec;
  const ch = CHANNELS[colorType];
  const bpp = Math.max(1, (ch * bitDepth) >> 3);
  const at = (x: number, y: number) => Array.from({ length: ch }, (_, c) => spec.samples[(y * width + x) * ch + c]);
  const passes = spec.interlace
    ? [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ]
    : [[0, 0, 1, 1]];
  const parts: Uint8Array[] = [];
  passes.forEach(([x0, y0, dx, dy], k) => {
    const rows: Uint8Array[] = [];
    for (let y = y0; y < height; y += dy) {
      const s: number[] = [];
      for (let x = x0; x < width; x += dx) s.push(...at(x, y));
      if (s.length > 0) rows.push(packRow(s, bitDepth));
    }
    if (rows.length > 0) parts.push(filterRows(rows, bpp, k));
  });
  const z = deflateSync(concat(parts));
  const n = spec.idatChunks ?? 1;
  const idats: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    idats.push(chunk('IDAT', z.subarray(Math.floor((i * z.length) / n), Math.floor(((i + 1) * z.length) / n))));
  }
  return concat([
    SIGNATURE,
    ihdr(width, height, bitDepth, colorType, spec.interlace ? 1 : 0),
    ...(spec.palette ? [chunk('PLTE', Uint8Array.from(spec.palette.flat()))] : []),
    ...(spec.trns ? [chunk('tRNS', spec.trns)] : []),
    ...(spec.extraChunks ?? []).map((c) => chunk(c.type, c.data)),
    ...idats,
    chunk('IEND', new Uint8Array(0)),
  ]);
}
