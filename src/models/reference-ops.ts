// The float64 CPU backend of the tensor interface: every op runs the kernels' reference
// functions (src/kernels/<op>/<op>-reference.ts), so a model written once against
// TensorOps can be evaluated independently of the WGSL kernels — the ground truth for the
// models' goldens and for end-to-end finite-difference gradient checks of the engine.
// Forward only (no autograd) and slow: for tests on small shapes.
import { attentionForwardRef } from '../kernels/attention/attention-reference.ts';
import type { BinaryOp } from '../kernels/binary/binary-kernels.ts';
import { affineForwardRef, binaryForwardRef, broadcastIndexRef } from '../kernels/binary/binary-reference.ts';
import { concatForwardRef, sliceForwardRef } from '../kernels/concat/concat-reference.ts';
import { conv2dForwardRef, type ConvGeometry } from '../kernels/conv2d/conv2d-reference.ts';
import { embeddingForwardRef } from '../kernels/embedding/embedding-reference.ts';
import { gegluForwardRef } from '../kernels/geglu/geglu-reference.ts';
import { geluForwardRef } from '../kernels/gelu/gelu-reference.ts';
import { groupNormForwardRef } from '../kernels/group-norm/group-norm-reference.ts';
import { layerNormForwardRef } from '../kernels/layer-norm/layer-norm-reference.ts';
import { linearForwardRef } from '../kernels/linear/linear-reference.ts';
import { matmulForwardRef } from '../kernels/matmul/matmul-reference.ts';
import { quickGeluForwardRef } from '../kernels/quick-gelu/quick-gelu-reference.ts';
import { meanForwardRef } from '../kernels/reduce/reduce-reference.ts';
import { siluForwardRef } from '../kernels/silu/silu-reference.ts';
import { timestepEmbeddingForwardRef } from '../kernels/timestep-embedding/timestep-embedding-reference.ts';
import { transposeForwardRef } from '../kernels/transpose/transpose-reference.ts';
import { upsampleNearest2xForwardRef } from '../kernels/upsample/upsample-reference.ts';
import type { SafetensorsFile } from '../packs/safetensors.ts';
import { ParamShapeError, type ParamSource } from './params.ts';
import { broadcastShapes, convOutputSize, normalizePadding } from './shape-ops.ts';
import type { AttentionOptions, ConvOptions, TensorOps, TimestepEmbeddingOptions } from './tensor-ops.ts';

/** A row-major float64 array with its shape. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** Integer indices (token ids), row-major, with their shape — EngineIds fits. */
export interface RefIds {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** Timesteps as plain numbers. */
export type RefTimes = readonly number[];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function fail(op: string, msg: string): never {
  throw new Error(`reference ${op}: ${msg}`);
}

/** A RefTensor holding a float64 copy of `data`. */
export function refTensor(data: ArrayLike<number>, shape: readonly number[]): RefTensor {
  if (data.length !== size(shape)) fail('tensor', `${data.length} values for shape [${shape}]`);
  return { shape: [...shape], data: Float64Array.from(data) };
}

const out = (data: Float64Array, shape: readonly number[]): RefTensor => ({ shape: [...shape], data });

function axisOf(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

export interface ReferenceOpsOptions {
  /**
   * Round timestep angles t·f to float32 as PyTorch (and the GPU) do. Off by default: exact
   * angles are smooth in t (finite differences). On to compare with fp32 goldens at large t,
   * where angles of hundreds of radians carry rounding of up to 3e-5.
   */
  fp32TimestepAngles?: boolean;
}

export class ReferenceOps implements TensorOps<RefTensor, RefIds, RefTimes> {
  readonly backend = 'reference' as const;

  constructor(readonly options: ReferenceOpsOptions = {}) {}

  shape(x: RefTensor): readonly number[] {
    return x.shape;
  }

  constant(values: ArrayLike<number>, shape: readonly number[]): RefTensor {
    return refTensor(values, shape);
  }

  // x: (…, in), w: (out, in), b: (out) → (…, out)
  linear(x: RefTensor, w: RefTensor, b?: RefTensor | null): RefTensor {
    const inF = x.shape[x.shape.length - 1];
    if (w.shape.length !== 2 || w.shape[1] !== inF) fail('linear', `x [${x.shape}] with weight [${w.shape}]`);
    const outF = w.shape[0];
    if (b && (b.shape.length !== 1 || b.shape[0] !== outF)) fail('linear', `bias [${b.shape}] for weight [${w.shape}]`);
    return out(linearForwardRef(x.data, w.data, b?.data ?? null, inF, outF), [...x.shape.slice(0, -1), outF]);
  }

  // a: (…, M, K), b: (…, K, N) → (…, M, N). As the engine: equal batch dims, or one operand
  // 2-D and shared by the whole batch.
  matmul(a: RefTensor, b: RefTensor): RefTensor {
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2 || a.shape[ra - 1] !== b.shape[rb - 2]) fail('matmul', `[${a.shape}] @ [${b.shape}]`);
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    if (ra > 2 && rb > 2 && batchA.join() !== batchB.join()) fail('matmul', `batch dims of [${a.shape}] and [${b.shape}] differ`);
    const batch = ra > 2 ? batchA : batchB;
    return out(matmulForwardRef(a.data, a.shape, b.data, b.shape), [...batch, a.shape[ra - 2], b.shape[rb - 1]]);
  }

  // x: (B, Cin, H, W), w: (Cout, Cin, kh, kw), bias: (Cout) → (B, Cout, Ho, Wo)
  conv2d(x: RefTensor, w: RefTensor, bias: RefTensor | null, o: ConvOptions = {}): RefTensor {
    if (x.shape.length !== 4 || w.shape.length !== 4 || x.shape[1] !== w.shape[1]) {
      fail('conv2d', `x [${x.shape}] with weight [${w.shape}]`);
    }
    const [B, Cin, H, W] = x.shape;
    const [Cout, , kh, kw] = w.shape;
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== Cout)) fail('conv2d', `bias [${bias.shape}] for ${Cout} channels`);
    const [padTop, padLeft, padBottom, padRight] = normalizePadding(o.padding);
    const stride = o.stride ?? 1;
    const g: ConvGeometry = { B, Cin, H, W, Cout, kh, kw, stride, padTop, padBottom, padLeft, padRight };
    const Ho = convOutputSize(H, kh, stride, padTop, padBottom);
    const Wo = convOutputSize(W, kw, stride, padLeft, padRight);
    if (Ho < 1 || Wo < 1) fail('conv2d', `empty output for x [${x.shape}]`);
    return out(conv2dForwardRef(g, x.data, w.data, bias?.data ?? null), [B, Cout, Ho, Wo]);
  }

  // x: (B, C, …), w, b: (C) → like x
  groupNorm(x: RefTensor, groups: number, w: RefTensor, b: RefTensor, eps: number, o: { silu?: boolean } = {}): RefTensor {
    const [batch, channels] = x.shape;
    if (x.shape.length < 2 || channels % groups !== 0) fail('groupNorm', `[${x.shape}] in ${groups} groups`);
    if (w.data.length !== channels || b.data.length !== channels) fail('groupNorm', `affine [${w.shape}] for ${channels} channels`);
    const dims = { batch, channels, spatial: size(x.shape.slice(2)), groups };
    return out(groupNormForwardRef(x.data, dims, w.data, b.data, eps, o.silu ?? false).y, x.shape);
  }

  // x: (…, C), w, b: (C) → like x
  layerNorm(x: RefTensor, w: RefTensor, b: RefTensor, eps: number): RefTensor {
    const C = x.shape[x.shape.length - 1];
    if (w.data.length !== C || b.data.length !== C) fail('layerNorm', `affine [${w.shape}] for ${C} features`);
    return out(layerNormForwardRef(x.data, C, w.data, b.data, eps).y, x.shape);
  }

  // q: (B, Nq, H·D), k, v: (B, Nk, H·D) → (B, Nq, H·D)
  attention(q: RefTensor, k: RefTensor, v: RefTensor, heads: number, o: AttentionOptions = {}): RefTensor {
    const [batch, nq, C] = q.shape;
    const nk = k.shape[1];
    const ok =
      q.shape.length === 3 &&
      k.shape.length === 3 &&
      v.shape.length === 3 &&
      k.shape[0] === batch &&
      v.shape[0] === batch &&
      v.shape[1] === nk &&
      k.shape[2] === C &&
      v.shape[2] === C &&
      C % heads === 0;
    if (!ok) fail('attention', `q [${q.shape}], k [${k.shape}], v [${v.shape}], ${heads} heads`);
    const headDim = C / heads;
    const dims = { batch, nq, nk, heads, headDim, scale: o.scale ?? 1 / Math.sqrt(headDim), causal: o.causal ?? false };
    return out(attentionForwardRef(q.data, k.data, v.data, dims).o, q.shape);
  }

  silu(x: RefTensor): RefTensor {
    return out(siluForwardRef(x.data), x.shape);
  }

  gelu(x: RefTensor): RefTensor {
    return out(geluForwardRef(x.data), x.shape);
  }

  quickGelu(x: RefTensor): RefTensor {
    return out(quickGeluForwardRef(x.data), x.shape);
  }

  // (…, 2F) → (…, F)
  geglu(x: RefTensor): RefTensor {
    const last = x.shape[x.shape.length - 1];
    if (last % 2) fail('geglu', `odd last dim ${last}`);
    return out(gegluForwardRef(x.data, last / 2), [...x.shape.slice(0, -1), last / 2]);
  }

  private binary(op: BinaryOp, a: RefTensor, b: RefTensor): RefTensor {
    broadcastShapes(a.shape, b.shape, op); // throws with both shapes named
    const { y, shape } = binaryForwardRef(op, a.data, a.shape, b.data, b.shape);
    return out(y, shape);
  }

  add(a: RefTensor, b: RefTensor): RefTensor {
    return this.binary('add', a, b);
  }

  sub(a: RefTensor, b: RefTensor): RefTensor {
    return this.binary('sub', a, b);
  }

  mul(a: RefTensor, b: RefTensor): RefTensor {
    return this.binary('mul', a, b);
  }

  scale(x: RefTensor, s: number): RefTensor {
    return out(affineForwardRef(x.data, s, 0), x.shape);
  }

  mean(x: RefTensor, axes: readonly number[], keepDims = false): RefTensor {
    const { y, shape } = meanForwardRef(x.data, x.shape, axes, keepDims);
    return out(y, shape);
  }

  // A copy, so that no two results share memory (callers may perturb one in place).
  reshape(x: RefTensor, shape: readonly number[]): RefTensor {
    const s = [...shape];
    const free = s.indexOf(-1);
    if (free >= 0) s[free] = x.data.length / -size(s);
    if (size(s) !== x.data.length || !s.every((d) => Number.isInteger(d) && d >= 0)) fail('reshape', `[${x.shape}] → [${shape}]`);
    return out(Float64Array.from(x.data), s);
  }

  transpose(x: RefTensor, perm: readonly number[]): RefTensor {
    if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      fail('transpose', `perm [${perm}] for [${x.shape}]`);
    }
    return out(transposeForwardRef(x.data, x.shape, perm), perm.map((p) => x.shape[p]));
  }

  concat(xs: readonly RefTensor[], axis: number): RefTensor {
    if (xs.length === 0) fail('concat', 'no tensors');
    const first = xs[0].shape;
    const ax = axisOf('concat', axis, first.length);
    for (const x of xs) {
      if (x.shape.length !== first.length || x.shape.some((d, i) => i !== ax && d !== first[i])) {
        fail('concat', `[${x.shape}] vs [${first}] on axis ${axis}`);
      }
    }
    const shapes = xs.map((x) => x.shape);
    const total = shapes.reduce((a, s) => a + s[ax], 0);
    return out(
      concatForwardRef(
        xs.map((x) => x.data),
        shapes,
        ax,
      ),
      first.map((d, i) => (i === ax ? total : d)),
    );
  }

  slice(x: RefTensor, axis: number, start: number, length: number): RefTensor {
    const ax = axisOf('slice', axis, x.shape.length);
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[ax]) {
      fail('slice', `[${start}, ${start + length}) of [${x.shape}] axis ${axis}`);
    }
    return out(
      sliceForwardRef(x.data, x.shape, ax, start, length),
      x.shape.map((d, i) => (i === ax ? length : d)),
    );
  }

  // Each output element reads the input element at its multi-index, with size-1 (and
  // missing leading) dims of the input pinned to 0.
  broadcastTo(x: RefTensor, shape: readonly number[]): RefTensor {
    const full = broadcastShapes(x.shape, shape, 'broadcastTo');
    if (full.join() !== shape.join()) fail('broadcastTo', `[${x.shape}] → [${shape}]`);
    const index = broadcastIndexRef(shape, x.shape);
    const y = new Float64Array(index.length);
    for (let i = 0; i < y.length; i++) y[i] = x.data[index[i]];
    return out(y, shape);
  }

  // x: (B, C, H, W) → (B, C, 2H, 2W)
  upsampleNearest2x(x: RefTensor): RefTensor {
    if (x.shape.length !== 4) fail('upsampleNearest2x', `rank-4 input expected, got [${x.shape}]`);
    const [B, C, H, W] = x.shape;
    return out(upsampleNearest2xForwardRef(x.data, B * C, H, W), [B, C, 2 * H, 2 * W]);
  }

  // ids: (…), table: (V, C) → (…, C)
  embedding(ids: RefIds, table: RefTensor): RefTensor {
    if (table.shape.length !== 2) fail('embedding', `table [${table.shape}] is not (V, C)`);
    const [V, C] = table.shape;
    if (ids.data.length !== size(ids.shape)) fail('embedding', `${ids.data.length} ids for shape [${ids.shape}]`);
    for (let i = 0; i < ids.data.length; i++) {
      const id = ids.data[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) fail('embedding', `id ${id} at [${i}] outside [0, ${V})`);
    }
    return out(embeddingForwardRef(ids.data, table.data, C), [...ids.shape, C]);
  }

  // t: (B) → (B, dim)
  timestepEmbedding(t: RefTimes, dim: number, o: TimestepEmbeddingOptions): RefTensor {
    const opts = { flipSinToCos: o.flipSinToCos, downscaleFreqShift: o.downscaleFreqShift, maxPeriod: o.maxPeriod ?? 10000 };
    return out(timestepEmbeddingForwardRef(t, dim, opts, this.options.fp32TimestepAngles ?? false), [t.length, dim]);
  }
}

/**
 * Named RefTensors over a Map, shape-checked as the models ask for them. The tensors are
 * handed out as stored (not copied): a gradient check perturbs one coordinate in place and
 * runs the model again.
 */
export class ReferenceParams implements ParamSource<RefTensor> {
  constructor(readonly tensors: Map<string, RefTensor> = new Map()) {}

  /** Every floating-point tensor of the files, widened to float64 (later files win). */
  static fromSafetensors(files: readonly SafetensorsFile[], rename: (stored: string) => string = (n) => n): ReferenceParams {
    const map = new Map<string, RefTensor>();
    for (const f of files) {
      for (const info of f.tensors) {
        let data: ArrayLike<number>;
        if (info.dtype === 'F64') {
          // Not through float32(), which would round float64 values.
          const raw = f.rawBytes(info.name);
          const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
          data = Float64Array.from({ length: info.numel }, (_, i) => dv.getFloat64(8 * i, true));
        } else if (['F32', 'F16', 'BF16'].includes(info.dtype)) data = f.float32(info.name);
        else continue; // integer buffers (e.g. position_ids) are no parameters
        map.set(rename(info.name), refTensor(data, info.shape));
      }
    }
    return new ReferenceParams(map);
  }

  get(name: string, shape: readonly number[]): RefTensor {
    const t = this.tensors.get(name);
    if (t === undefined) throw new ParamShapeError(`missing parameter '${name}' (expected shape [${shape.join(', ')}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ParamShapeError(`parameter '${name}' has shape [${t.shape.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  set(name: string, t: RefTensor): void {
    this.tensors.set(name, t);
  }
}
