// Writes one safetensors file of the pack from byte ranges of source files, one bounded
// piece at a time: the header first (its layout is known from names, dtypes and shapes
// alone), then every tensor in file order, each read by range, converted to the pack's
// dtype and hashed on the way out. Memory stays at a few pieces whatever the file size.
import { f32ToF16Bits } from '../engine/dtype.ts';
import {
  dtypeSize,
  f32ToBf16Bits,
  parseSafetensorsHeader,
  planSafetensorsLayout,
  type SafetensorsDType,
  type SafetensorsHeader,
} from './safetensors.ts';
import type { PackFileSink, RangedSource } from './pack-io.ts';
import { Sha256 } from './sha256.ts';

/** A tensor of the pack and where its values come from (a contiguous range of a source). */
export interface PlannedTensor {
  name: string;
  shape: readonly number[];
  dtype: SafetensorsDType;
  source: RangedSource;
  /** Absolute offset of the values in the source file. */
  offset: number;
  sourceDtype: SafetensorsDType;
}

/** Elements per piece: 4M elements = 16 MB of fp32. */
export const PIECE_ELEMENTS = 4 * 1024 * 1024;

const FLOAT_TYPES: readonly SafetensorsDType[] = ['F16', 'BF16', 'F32', 'F64'];

export function canConvert(from: SafetensorsDType, to: SafetensorsDType): boolean {
  return from === to || (FLOAT_TYPES.includes(from) && (to === 'F32' || to === 'F16' || to === 'BF16'));
}

const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The header of the file `writeTensors` will write (for graphs and checks before writing). */
export function plannedHeader(tensors: readonly PlannedTensor[], metadata?: Record<string, string>): SafetensorsHeader {
  const layout = planSafetensorsLayout(
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      byteLength: numelOf(t.shape) * dtypeSize(t.dtype),
    })),
    metadata,
  );
  return parseSafetensorsHeader(layout.header, { fileSize: layout.fileSize });
}

/**
 * Converts little-endian float values between safetensors dtypes (round to nearest even).
 * A finite value that does not fit fp16 is an error, not an infinity in the pack.
 */
export function convertFloats(raw: Uint8Array, from: SafetensorsDType, to: SafetensorsDType, what: string): Uint8Array {
  if (from === to) return raw;
  if (!canConvert(from, to)) throw new Error(`${what}: cannot convert ${from} to ${to}`);
  const n = raw.length / dtypeSize(from);
  const src = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const get =
    from === 'F32'
      ? (i: number) => src.getFloat32(4 * i, true)
      : from === 'F64'
        ? (i: number) => src.getFloat64(8 * i, true)
        : from === 'BF16'
          ? (i: number) => bf16ToF32(src.getUint16(2 * i, true))
          : (i: number) => f16ToF32(src.getUint16(2 * i, true));
  const out = new Uint8Array(n * dtypeSize(to));
  const dst = new DataView(out.buffer);
  if (to === 'F32') {
    for (let i = 0; i < n; i++) dst.setFloat32(4 * i, get(i), true);
  } else if (to === 'BF16') {
    for (let i = 0; i < n; i++) dst.setUint16(2 * i, f32ToBf16Bits(get(i)), true);
  } else {
    for (let i = 0; i < n; i++) {
      const v = get(i);
      const h = f32ToF16Bits(v);
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) === 0 && Number.isFinite(v)) {
        throw new Error(`${what}: value ${v} does not fit fp16 (max 65504); build without --fp16`);
      }
      dst.setUint16(2 * i, h, true);
    }
  }
  return out;
}

const cvt = new DataView(new ArrayBuffer(4));
function bf16ToF32(bits: number): number {
  cvt.setUint32(0, bits << 16);
  return cvt.getFloat32(0);
}
function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export interface WriteTensorsOptions {
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Called with the number of source bytes consumed after each piece. */
  onSourceBytes?: (n: number) => void;
  pieceElements?: number;
  /** SHA-256 of the written bytes; default the portable one in sha256.ts (Node passes node:crypto's, ~10× faster). */
  hasher?: () => Hasher;
}

export interface Hasher {
  update(bytes: Uint8Array): unknown;
  /** Lowercase hex digest. */
  hex(): string;
}

/** Streams the tensors into `sink` as one safetensors file; returns its size and sha256. */
export async function writeTensors(
  sink: PackFileSink,
  tensors: readonly PlannedTensor[],
  o: WriteTensorsOptions = {},
): Promise<{ bytes: number; sha256: string; header: SafetensorsHeader }> {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const layout = planSafetensorsLayout(
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      byteLength: numelOf(t.shape) * dtypeSize(t.dtype),
    })),
    o.metadata,
  );
  const hash: Hasher = o.hasher ? o.hasher() : new Sha256();
  let written = 0;
  const put = async (bytes: Uint8Array) => {
    hash.update(bytes);
    await sink.write(bytes);
    written += bytes.length;
  };
  await put(layout.header);
  const piece = o.pieceElements ?? PIECE_ELEMENTS;
  for (const entry of layout.tensors) {
    const t = byName.get(entry.name)!;
    const n = numelOf(t.shape);
    const inSize = dtypeSize(t.sourceDtype);
    for (let i = 0; i < n; i += piece) {
      o.signal?.throwIfAborted();
      const count = Math.min(piece, n - i);
      const raw = await t.source.read(t.offset + i * inSize, count * inSize);
      if (raw.length !== count * inSize) throw new Error(`${t.source.name}: short read in tensor ${t.name}`);
      await put(convertFloats(raw, t.sourceDtype, t.dtype, `${t.source.name}: tensor ${t.name}`));
      o.onSourceBytes?.(raw.length);
    }
  }
  await sink.close();
  if (written !== layout.fileSize) throw new Error(`internal: wrote ${written} bytes, planned ${layout.fileSize}`);
  return {
    bytes: written,
    sha256: hash.hex(),
    header: parseSafetensorsHeader(layout.header, { fileSize: layout.fileSize }),
  };
}
