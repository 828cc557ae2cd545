// Parameters for the engine backend from safetensors files, checked against the shapes the
// config implies and kept on the GPU (kept, not scoped) until dispose().
//
// Two kinds of source:
//  - a file held in memory (tests, tools): each tensor is uploaded the first time a model
//    asks for it;
//  - a file read by byte ranges (a pack in OPFS or on disk): preload() streams it to the GPU
//    tensor by tensor, in chunks of at most `chunkBytes`, so no whole weights file is ever in
//    one ArrayBuffer and nothing stays in JS memory after the upload. get() is synchronous,
//    so such a source must be preloaded before a model runs.
//
// dtypes on the GPU: frozen weights that the `f16` policy selects stay fp16 (half the
// memory; linear and conv2d read them as f16 or packed pairs, see weight-variant.ts); with
// `f32ToF16` fp32 sources of those weights are rounded to fp16 too. Everything else is fp32.
import { bytesPerElement, toF16Array, type DType } from '../engine/dtype.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import {
  decodeFloat32,
  dtypeSize,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  type SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from '../packs/safetensors.ts';
import { ParamShapeError, type ParamSource } from './params.ts';

/** A safetensors file read by byte ranges (`bytes` when it is in memory anyway). */
export interface SafetensorsSource {
  readonly header: SafetensorsHeader;
  /** Bytes [start, end) of the file. */
  readRange(start: number, end: number): Promise<Uint8Array>;
  readonly bytes?: Uint8Array;
}

/** A parsed in-memory file as a source. */
export function fileSource(f: SafetensorsFile): SafetensorsSource {
  return { header: f, bytes: f.bytes, readRange: async (start, end) => f.bytes.subarray(start, end) };
}

/** Reads only the header (8 + N bytes, N ≤ a few MB for real checkpoints) of a ranged file. */
export async function openSafetensorsSource(
  readRange: (start: number, end: number) => Promise<Uint8Array>,
  fileSize: number,
): Promise<SafetensorsSource> {
  const headerEnd = safetensorsHeaderSize(await readRange(0, Math.min(8, fileSize)));
  const header = parseSafetensorsHeader(await readRange(0, Math.min(headerEnd, fileSize)), { fileSize });
  return { header, readRange };
}

/** Which parameters stay fp16 on the GPU. */
export type F16Policy = (name: string, shape: readonly number[]) => boolean;

/**
 * The weights of linear layers (2-D `….weight`) and convolutions (4-D), which the kernels
 * read as fp16 — not token or position embedding tables (gathered and compared in f32),
 * biases and norm parameters (small, read by f32-only kernels).
 */
export const frozenWeightsF16: F16Policy = (name, shape) =>
  name.endsWith('.weight') && (shape.length === 4 || (shape.length === 2 && !name.endsWith('embedding.weight')));

export interface SafetensorsParamsOptions {
  /** Maps a model's parameter name to the file's name (e.g. adds a prefix). */
  rename?: (name: string) => string;
  /** Parameters that stay fp16 when stored fp16 (default: none; all fp32 on the GPU). */
  f16?: F16Policy;
  /** Also round fp32/bf16/f64 sources of the `f16` parameters to fp16 (default false). */
  f32ToF16?: boolean;
  /** Largest single read while streaming (default 16 MiB). */
  chunkBytes?: number;
}

const DEFAULT_CHUNK = 16 * 1024 * 1024;

export class SafetensorsParams implements ParamSource<Tensor> {
  /** Keyed by the stored (file) name. */
  private readonly uploaded = new Map<string, Tensor>();
  private readonly sources: readonly SafetensorsSource[];
  private readonly rename: (name: string) => string;
  private readonly options: SafetensorsParamsOptions;

  constructor(
    private readonly engine: Engine,
    files: readonly (SafetensorsFile | SafetensorsSource)[],
    options: SafetensorsParamsOptions | ((name: string) => string) = {},
  ) {
    this.options = typeof options === 'function' ? { rename: options } : options;
    this.rename = this.options.rename ?? ((n) => n);
    this.sources = files.map((f) => ('header' in f ? f : fileSource(f)));
  }

  private find(name: string) {
    const stored = this.rename(name);
    for (const src of this.sources) {
      const info = src.header.byName.get(stored);
      if (info) return { src, info, stored };
    }
    return null;
  }

  has(name: string): boolean {
    return this.find(name) !== null;
  }

  get(name: string, shape: readonly number[]): Tensor {
    const hit = this.find(name);
    const cached = this.uploaded.get(hit?.stored ?? this.rename(name));
    if (cached) {
      if (hit) checkShape(hit.stored, cached.shape, shape);
      return cached;
    }
    if (!hit) throw new ParamShapeError(`missing parameter '${this.rename(name)}' (expected shape [${shape.join(', ')}])`);
    const { src, info, stored } = hit;
    checkShape(stored, info.shape, shape);
    if (!src.bytes) {
      throw new Error(
        `parameter '${stored}' is not on the GPU yet: its file is streamed, so upload it first (SafetensorsParams.preload(); for a pack's vision tower PackRuntime.ensureImageEncoder())`,
      );
    }
    const t = this.allocate(info);
    this.engine.writeBytes(t, this.convert(info, src.bytes.subarray(info.fileOffset, info.fileOffset + info.byteLength), t.dtype));
    return t;
  }

  /**
   * Upload every tensor of every source not yet on the GPU, streaming each in chunks of at
   * most `chunkBytes`. `onTensor` reports progress (bytes read so far, of the total).
   */
  async preload(onTensor?: (readBytes: number, totalBytes: number) => void): Promise<void> {
    const todo = this.sources.flatMap((src) => src.header.tensors.filter((i) => !this.uploaded.has(i.name)).map((info) => ({ src, info })));
    const total = todo.reduce((n, { info }) => n + info.byteLength, 0);
    let done = 0;
    for (const { src, info } of todo) {
      if (this.uploaded.has(info.name)) continue; // in two sources: the first wins, as in find()
      await this.stream(src, info);
      done += info.byteLength;
      onTensor?.(done, total);
    }
  }

  private async stream(src: SafetensorsSource, info: SafetensorsTensorInfo): Promise<void> {
    const t = this.allocate(info);
    const inSize = dtypeSize(info.dtype);
    const outSize = bytesPerElement(t.dtype);
    // Whole elements, and a multiple of 4 of them so every write offset is word-aligned.
    const per = Math.max(4, Math.floor((this.options.chunkBytes ?? DEFAULT_CHUNK) / inSize / 4) * 4);
    for (let e0 = 0; e0 < info.numel; e0 += per) {
      const n = Math.min(per, info.numel - e0);
      const start = info.fileOffset + e0 * inSize;
      const raw = await src.readRange(start, start + n * inSize);
      if (raw.length !== n * inSize) throw new Error(`parameter '${info.name}': short read (${raw.length} of ${n * inSize} bytes)`);
      this.engine.writeBytes(t, this.convert(info, raw, t.dtype), e0 * outSize);
    }
  }

  /** The GPU dtype of a stored tensor under the options. */
  dtypeOf(info: SafetensorsTensorInfo): DType {
    const wantF16 = this.options.f16?.(info.name, info.shape) ?? false;
    if (!wantF16) return 'f32';
    return info.dtype === 'F16' || this.options.f32ToF16 ? 'f16' : 'f32';
  }

  private allocate(info: SafetensorsTensorInfo): Tensor {
    // Exact-size buffers: weights live for the session, so size-class rounding would only waste memory.
    const t = this.engine.keep(this.engine.empty(info.shape, this.dtypeOf(info), true));
    t.name = info.name;
    this.uploaded.set(info.name, t);
    return t;
  }

  // Raw stored bytes → bytes of the GPU dtype (fp16 → fp16 and fp32 → fp32 pass through).
  private convert(info: SafetensorsTensorInfo, raw: Uint8Array, to: DType): Uint8Array {
    if ((to === 'f16' && info.dtype === 'F16') || (to === 'f32' && info.dtype === 'F32')) return raw;
    const f32 = decodeFloat32(info.dtype, raw, info.name);
    const out = to === 'f16' ? toF16Array(f32) : f32;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  /** Replace (or add) a parameter, e.g. a trainable copy. The previous tensor is disposed. */
  set(name: string, t: Tensor): void {
    const stored = this.rename(name);
    this.uploaded.get(stored)?.dispose();
    this.uploaded.set(stored, t);
  }

  /** GPU bytes of the uploaded parameters (their dtypes' sizes, not the pool's size classes). */
  get residentBytes(): number {
    let n = 0;
    for (const t of this.uploaded.values()) n += t.byteLength;
    return n;
  }

  dispose(): void {
    for (const t of this.uploaded.values()) t.dispose();
    this.uploaded.clear();
  }
}

function checkShape(stored: string, actual: readonly number[], shape: readonly number[]): void {
  if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
    throw new ParamShapeError(`parameter '${stored}' has shape [${actual.join(', ')}], the config implies [${shape.join(', ')}]`);
  }
}
