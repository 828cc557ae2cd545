// The ONNX backend of the tensor interface (docs/architecture.md): running a model function on an
// OnnxTracer records every call as ONNX nodes (opset 21, plus com.microsoft contrib ops the
// WebGPU EP runs well), with static shapes from ShapeOps' rules. Parameters become
// initializers whose bytes stay in the safetensors files they came from (external data),
// so one download serves both the engine and onnxruntime-web.
//
// Mapping choices (checked against onnxruntime-web 1.30; see onnx-tracer.test.ts):
//   linear      → Gemm(transB=1) on a 2-D view: no transposed copy of the weight, bias fused
//   groupNorm   → Reshape(B, G, −1) · InstanceNormalization · Reshape · affine: opset-21
//                 GroupNormalization has no WebGPU kernel in ORT 1.30 (it would run on the CPU)
//   attention   → MatMul · Softmax · MatMul per head (default), or com.microsoft
//                 MultiHeadAttention (causal as an additive bias constant). ORT 1.30's WebGPU
//                 MHA is wrong when the device has subgroups of size 8 (llvmpipe) and both
//                 sequences are ≥ 32 (its subgroup path; 1e-1 relative errors), so the
//                 decomposition is the default; MHA avoids the N×N scores where it is correct
//   quickGelu   → com.microsoft QuickGelu (x·σ(1.702x) in one kernel)
//   timesteps   → t·f with f as PyTorch computes it in fp32, then a Cody–Waite reduction by
//                 2π before Sin/Cos (WGSL bounds sin/cos errors only on [−π, π]; same as the
//                 engine's kernel)
import {
  resolveTimestepOptions,
  timestepFrequencies,
} from '../kernels/timestep-embedding/timestep-embedding-reference.ts';
import { ParamShapeError, type ParamSource } from '../models/params.ts';
import { normalizePadding, ShapeOps } from '../models/shape-ops.ts';
import type { AttentionOptions, ConvOptions, TensorOps, TimestepEmbeddingOptions } from '../models/tensor-ops.ts';
import type { SafetensorsHeader } from '../packs/safetensors.ts';
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  DEFAULT_OPSET,
  encodeModel,
  floatInitializer,
  int64Initializer,
  MS_DOMAIN,
  OnnxDataType,
  type OnnxAttribute,
  type OnnxDataTypeCode,
  type OnnxInitializer,
  type OnnxModel,
  type OnnxNode,
  type OnnxValueInfo,
} from './onnx-proto.ts';

/** float16 only for stored parameters before their Cast; every op computes in float32. */
export type TraceDType = 'float32' | 'float16' | 'int64';

/** A value of the graph being traced: its ONNX name and static shape. */
export interface TraceValue {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: TraceDType;
}

/** Token / position ids: an int64 graph value. */
export type TraceIds = TraceValue;
/** Timesteps: a float32 graph value of shape (B). */
export type TraceTimes = TraceValue;

export interface OnnxTracerOptions {
  /**
   * 'matmul' (default): MatMul · Softmax · MatMul, correct on every EP tried.
   * 'mha': com.microsoft MultiHeadAttention (fused, no N×N scores in memory) — but see the
   * file comment: wrong on ORT 1.30's WebGPU EP with subgroup size 8.
   */
  attention?: 'mha' | 'matmul';
  /** Record every intermediate's shape as value_info (ORT then checks them). Default true. */
  valueInfo?: boolean;
}

export interface TraceModelOptions {
  name?: string;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

const ELEM_TYPE: Record<TraceDType, OnnxDataTypeCode> = {
  float32: OnnxDataType.FLOAT,
  float16: OnnxDataType.FLOAT16,
  int64: OnnxDataType.INT64,
};
const DTYPE_OF: Partial<Record<number, TraceDType>> = {
  [OnnxDataType.FLOAT]: 'float32',
  [OnnxDataType.FLOAT16]: 'float16',
  [OnnxDataType.INT64]: 'int64',
};

// Causal mask value: exp(−1e9 − max) is exactly 0 in fp32, and unlike −∞ it cannot turn a
// fully masked row into NaN.
const MASKED = -1e9;

// 2π split for the angle reduction (as in the engine's timestep kernel): HI has 8
// significant bits, so k·HI is exact for |k| < 2¹⁶.
const TWO_PI_HI = 6.28125;
const TWO_PI_MID = 1.93530717e-3;
const TWO_PI_LO = 1.02531317e-11;
const INV_TWO_PI = 0.159154937;

const product = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export class OnnxTracer implements TensorOps<TraceValue, TraceIds, TraceTimes> {
  readonly backend = 'onnx' as const;

  private readonly shapes = new ShapeOps();
  private readonly nodes: OnnxNode[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly initializers: OnnxInitializer[] = [];
  private readonly values: OnnxValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, TraceValue>();
  private counter = 0;
  private readonly attentionMode: 'mha' | 'matmul';
  private readonly recordValueInfo: boolean;

  constructor(options: OnnxTracerOptions = {}) {
    this.attentionMode = options.attention ?? 'matmul';
    this.recordValueInfo = options.valueInfo ?? true;
  }

  // ------------------------------------------------------------ graph building

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx tracer: the name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    return this.claim(name);
  }

  /** Declare a graph input. */
  input(name: string, shape: readonly number[], dtype: TraceDType = 'float32'): TraceValue {
    this.claim(name);
    this.inputs.push({ name, shape: [...shape], elemType: ELEM_TYPE[dtype] });
    return { name, shape: [...shape], dtype };
  }

  /** Declare `value` as the graph output `name`. */
  output(name: string, value: TraceValue): void {
    this.claim(name);
    this.nodes.push({ opType: 'Identity', inputs: [value.name], outputs: [name], name: `output_${name}` });
    this.outputs.push({ name, shape: [...value.shape], elemType: ELEM_TYPE[value.dtype] });
  }

  /** Add an initializer (inline or external) and return it as a value. */
  initializer(init: OnnxInitializer): TraceValue {
    const dtype = DTYPE_OF[init.dataType];
    if (!dtype) throw new Error(`onnx tracer: initializer '${init.name}' has unsupported data type ${init.dataType}`);
    this.claim(init.name);
    this.initializers.push(init);
    return { name: init.name, shape: [...init.dims], dtype };
  }

  /** A float32 constant stored in the model (deduplicated by content). */
  constant(values: ArrayLike<number>, shape: readonly number[], hint = 'const'): TraceValue {
    if (values.length !== product(shape))
      throw new Error(`onnx tracer: constant has ${values.length} values for shape [${shape}]`);
    const data = Float32Array.from(values);
    const key = `f32|${shape.join(',')}|${Array.from(new Uint32Array(data.buffer)).join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh(hint);
    this.initializers.push(floatInitializer(name, shape, data));
    const v: TraceValue = { name, shape: [...shape], dtype: 'float32' };
    this.constants.set(key, v);
    return v;
  }

  /** A 1-D int64 constant (shapes, axes, starts) — deduplicated. */
  private ints(values: readonly number[]): TraceValue {
    const key = `i64|${values.join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh('ints');
    this.initializers.push(int64Initializer(name, [values.length], values));
    const v: TraceValue = { name, shape: [values.length], dtype: 'int64' };
    this.constants.set(key, v);
    return v;
  }

  private scalar(value: number): TraceValue {
    return this.constant([value], [], 'scalar');
  }

  /** Append a node with one output of `shape`. */
  private op(
    opType: string,
    inputs: readonly (TraceValue | '')[],
    shape: readonly number[],
    attributes?: Record<string, OnnxAttribute>,
    domain?: string,
    dtype: TraceDType = 'float32',
  ): TraceValue {
    const out = this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      domain,
      name: `${opType}_${this.nodes.length}`,
      inputs: inputs.map((i) => (i === '' ? '' : i.name)),
      outputs: [out],
      attributes,
    });
    const v: TraceValue = { name: out, shape: [...shape], dtype };
    if (this.recordValueInfo) this.values.push({ name: out, shape: [...shape], elemType: ELEM_TYPE[dtype] });
    return v;
  }

  /** Cast a value stored as another type (e.g. an fp16 initializer) to float32. */
  castToFloat(value: TraceValue): TraceValue {
    if (value.dtype === 'float32') return value;
    return this.op('Cast', [value], value.shape, { to: attrInt(OnnxDataType.FLOAT) });
  }

  private float(x: TraceValue, op: string): void {
    if (x.dtype !== 'float32')
      throw new Error(`onnx tracer: ${op} expects a float32 value, got ${x.dtype} '${x.name}'`);
  }

  /** The traced graph as an OnnxModel (opset 21 + com.microsoft where used). */
  model(options: TraceModelOptions = {}): OnnxModel {
    if (this.outputs.length === 0) throw new Error('onnx tracer: the graph has no outputs');
    const usesMs = this.nodes.some((n) => n.domain === MS_DOMAIN);
    return {
      graph: {
        name: options.name ?? 'graph',
        nodes: [...this.nodes],
        inputs: [...this.inputs],
        outputs: [...this.outputs],
        initializers: [...this.initializers],
        valueInfo: [...this.values],
      },
      opsets: usesMs ? { '': DEFAULT_OPSET, [MS_DOMAIN]: 1 } : { '': DEFAULT_OPSET },
      docString: options.docString,
      metadata: options.metadata,
    };
  }

  encode(options: TraceModelOptions = {}): Uint8Array {
    return encodeModel(this.model(options));
  }

  /** The locations (file names) external initializers point into. */
  externalLocations(): string[] {
    return [...new Set(this.initializers.flatMap((i) => (i.external ? [i.external.location] : [])))];
  }

  /** Graph inputs no node reads (a mismatched LoRA module name shows up here). */
  unusedInputs(): string[] {
    const read = new Set(this.nodes.flatMap((n) => n.inputs));
    return this.inputs.map((i) => i.name).filter((n) => !read.has(n));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Op types used, with counts (reports, tests). */
  opCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const n of this.nodes) {
      const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  }

  // ------------------------------------------------------------ TensorOps

  shape(x: TraceValue): readonly number[] {
    return x.shape;
  }

  // x: (…, in), weight: (out, in), bias: (out) → (…, out)
  linear(x: TraceValue, w: TraceValue, b?: TraceValue | null): TraceValue {
    this.float(x, 'linear');
    const out = this.shapes.linear(x, w, b).shape;
    const inF = x.shape[x.shape.length - 1];
    const x2 = x.shape.length === 2 ? x : this.reshape(x, [product(x.shape) / inF, inF]);
    const y2 = this.op('Gemm', b ? [x2, w, b] : [x2, w], [x2.shape[0], w.shape[0]], { transB: attrInt(1) });
    return this.reshape(y2, out);
  }

  // a: (…, M, K), b: (…, K, N) → (…, M, N)
  matmul(a: TraceValue, b: TraceValue): TraceValue {
    this.float(a, 'matmul');
    return this.op('MatMul', [a, b], this.shapes.matmul(a, b).shape);
  }

  // x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw) → (B, Cout, Ho, Wo)
  conv2d(x: TraceValue, w: TraceValue, b: TraceValue | null, o: ConvOptions = {}): TraceValue {
    this.float(x, 'conv2d');
    const shape = this.shapes.conv2d(x, w, b, o).shape;
    const s = o.stride ?? 1;
    // ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right].
    const pads = normalizePadding(o.padding);
    return this.op('Conv', b ? [x, w, b] : [x, w], shape, {
      kernel_shape: attrInts(w.shape.slice(2)),
      strides: attrInts([s, s]),
      pads: attrInts(pads),
      dilations: attrInts([1, 1]),
      group: attrInt(1),
    });
  }

  // x: (B, C, …) → same; statistics over each group of C/G channels and all positions
  groupNorm(
    x: TraceValue,
    groups: number,
    w: TraceValue,
    b: TraceValue,
    eps: number,
    o: { silu?: boolean } = {},
  ): TraceValue {
    this.float(x, 'groupNorm');
    this.shapes.groupNorm(x, groups, w, b);
    const [B, C] = x.shape;
    const grouped = this.reshape(x, [B, groups, product(x.shape) / (B * groups)]);
    const ones = this.constant(new Float32Array(groups).fill(1), [groups], 'ones');
    const zeros = this.constant(new Float32Array(groups), [groups], 'zeros');
    const normed = this.op('InstanceNormalization', [grouped, ones, zeros], grouped.shape, { epsilon: attrFloat(eps) });
    // Per-channel affine: weight/bias as (C, 1, …, 1) against (B, C, …).
    const affine = [C, ...x.shape.slice(2).map(() => 1)];
    let y = this.reshape(normed, x.shape);
    y = this.add(this.mul(y, this.reshape(w, affine)), this.reshape(b, affine));
    return o.silu ? this.silu(y) : y;
  }

  // x: (…, C), weight/bias: (C)
  layerNorm(x: TraceValue, w: TraceValue, b: TraceValue, eps: number): TraceValue {
    this.float(x, 'layerNorm');
    const shape = this.shapes.layerNorm(x, w, b).shape;
    return this.op('LayerNormalization', [x, w, b], shape, { axis: attrInt(-1), epsilon: attrFloat(eps) });
  }

  // q: (B, Nq, H·D), k/v: (B, Nk, H·D) → (B, Nq, H·D)
  attention(q: TraceValue, k: TraceValue, v: TraceValue, heads: number, o: AttentionOptions = {}): TraceValue {
    this.float(q, 'attention');
    const shape = this.shapes.attention(q, k, v, heads, o).shape;
    const [B, Nq, C] = q.shape;
    const Nk = k.shape[1];
    const D = C / heads;
    const scale = o.scale ?? 1 / Math.sqrt(D);
    if (o.causal && Nq !== Nk) throw new Error(`attention: causal needs as many keys as queries (${Nq} vs ${Nk})`);
    const mask = o.causal
      ? this.constant(
          Float32Array.from({ length: Nq * Nk }, (_, i) => (i % Nk > Math.floor(i / Nk) ? MASKED : 0)),
          [1, 1, Nq, Nk],
          'causal_mask',
        )
      : null;
    if (this.attentionMode === 'mha') {
      // inputs: query, key, value, bias, key_padding_mask, attention_bias (B|1, H|1, Nq, Nk)
      const inputs: (TraceValue | '')[] = mask ? [q, k, v, '', '', mask] : [q, k, v];
      return this.op(
        'MultiHeadAttention',
        inputs,
        shape,
        { num_heads: attrInt(heads), scale: attrFloat(scale) },
        MS_DOMAIN,
      );
    }
    const qh = this.transpose(this.reshape(q, [B, Nq, heads, D]), [0, 2, 1, 3]); // (B, H, Nq, D)
    const kt = this.transpose(this.reshape(k, [B, Nk, heads, D]), [0, 2, 3, 1]); // (B, H, D, Nk)
    const vh = this.transpose(this.reshape(v, [B, Nk, heads, D]), [0, 2, 1, 3]); // (B, H, Nk, D)
    let s = this.scale(this.matmul(qh, kt), scale);
    if (mask) s = this.add(s, mask);
    const p = this.op('Softmax', [s], s.shape, { axis: attrInt(-1) });
    const out = this.transpose(this.matmul(p, vh), [0, 2, 1, 3]); // (B, Nq, H, D)
    return this.reshape(out, shape);
  }

  silu(x: TraceValue): TraceValue {
    this.float(x, 'silu');
    return this.op('Mul', [x, this.op('Sigmoid', [x], x.shape)], x.shape);
  }

  gelu(x: TraceValue): TraceValue {
    this.float(x, 'gelu');
    return this.op('Gelu', [x], x.shape, { approximate: attrString('none') });
  }

  quickGelu(x: TraceValue): TraceValue {
    this.float(x, 'quickGelu');
    return this.op('QuickGelu', [x], x.shape, { alpha: attrFloat(1.702) }, MS_DOMAIN);
  }

  // (…, 2F) → (…, F): first half · gelu(second half)
  geglu(x: TraceValue): TraceValue {
    this.float(x, 'geglu');
    const shape = this.shapes.geglu(x).shape;
    const F = shape[shape.length - 1];
    const a = this.fresh('geglu_a');
    const g = this.fresh('geglu_gate');
    this.nodes.push({
      opType: 'Split',
      name: `Split_${this.nodes.length}`,
      inputs: [x.name, this.ints([F, F]).name],
      outputs: [a, g],
      attributes: { axis: attrInt(-1) },
    });
    if (this.recordValueInfo)
      for (const n of [a, g]) this.values.push({ name: n, shape: [...shape], elemType: OnnxDataType.FLOAT });
    const hidden: TraceValue = { name: a, shape, dtype: 'float32' };
    const gate: TraceValue = { name: g, shape, dtype: 'float32' };
    return this.mul(hidden, this.gelu(gate));
  }

  add(a: TraceValue, b: TraceValue): TraceValue {
    this.float(a, 'add');
    this.float(b, 'add');
    return this.op('Add', [a, b], this.shapes.add(a, b).shape);
  }

  sub(a: TraceValue, b: TraceValue): TraceValue {
    this.float(a, 'sub');
    this.float(b, 'sub');
    return this.op('Sub', [a, b], this.shapes.sub(a, b).shape);
  }

  mul(a: TraceValue, b: TraceValue): TraceValue {
    this.float(a, 'mul');
    this.float(b, 'mul');
    return this.op('Mul', [a, b], this.shapes.mul(a, b).shape);
  }

  scale(x: TraceValue, s: number): TraceValue {
    this.float(x, 'scale');
    return s === 1 ? x : this.op('Mul', [x, this.scalar(s)], x.shape);
  }

  mean(x: TraceValue, axes: readonly number[], keepDims = false): TraceValue {
    this.float(x, 'mean');
    const shape = this.shapes.mean(x, axes, keepDims).shape;
    return this.op('ReduceMean', [x, this.ints(axes)], shape, { keepdims: attrInt(keepDims ? 1 : 0) });
  }

  reshape(x: TraceValue, shape: readonly number[]): TraceValue {
    const out = this.shapes.reshape(x, shape).shape;
    if (sameShape(out, x.shape)) return x;
    return this.op('Reshape', [x, this.ints(out)], out, undefined, undefined, x.dtype);
  }

  transpose(x: TraceValue, perm: readonly number[]): TraceValue {
    const shape = this.shapes.transpose(x, perm).shape;
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], shape, { perm: attrInts(perm) }, undefined, x.dtype);
  }

  concat(xs: readonly TraceValue[], axis: number): TraceValue {
    if (xs.length === 0) throw new Error('concat: no inputs');
    const ax = axis < 0 ? axis + xs[0].shape.length : axis;
    const shape = this.shapes.concat(xs, ax).shape;
    if (xs.length === 1) return xs[0];
    return this.op('Concat', xs, shape, { axis: attrInt(ax) }, undefined, xs[0].dtype);
  }

  slice(x: TraceValue, axis: number, start: number, length: number): TraceValue {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const shape = this.shapes.slice(x, ax, start, length).shape;
    if (start === 0 && length === x.shape[ax]) return x;
    return this.op(
      'Slice',
      [x, this.ints([start]), this.ints([start + length]), this.ints([ax])],
      shape,
      undefined,
      undefined,
      x.dtype,
    );
  }

  broadcastTo(x: TraceValue, shape: readonly number[]): TraceValue {
    const out = this.shapes.broadcastTo(x, shape).shape;
    if (sameShape(out, x.shape)) return x;
    return this.op('Expand', [x, this.ints(out)], out, undefined, undefined, x.dtype);
  }

  // x: (B, C, H, W) → (B, C, 2H, 2W), out[y][x] = in[⌊y/2⌋][⌊x/2⌋]
  upsampleNearest2x(x: TraceValue): TraceValue {
    this.float(x, 'upsampleNearest2x');
    if (x.shape.length !== 4) throw new Error(`upsampleNearest2x: rank-4 input expected, got [${x.shape}]`);
    const shape = this.shapes.upsampleNearest2x(x).shape;
    const scales = this.constant([1, 1, 2, 2], [4], 'resize_scales');
    return this.op('Resize', [x, '', scales], shape, {
      mode: attrString('nearest'),
      coordinate_transformation_mode: attrString('asymmetric'),
      nearest_mode: attrString('floor'),
    });
  }

  // ids: (…) int64, table: (V, C) → (…, C)
  embedding(ids: TraceIds, table: TraceValue): TraceValue {
    if (ids.dtype !== 'int64') throw new Error(`embedding: ids '${ids.name}' must be int64, got ${ids.dtype}`);
    if (table.shape.length !== 2) throw new Error(`embedding: table must be (V, C), got [${table.shape}]`);
    return this.op('Gather', [table, ids], this.shapes.embedding(ids, table).shape, { axis: attrInt(0) });
  }

  // t: (B) float → (B, dim), diffusers get_timestep_embedding
  timestepEmbedding(t: TraceTimes, dim: number, o: TimestepEmbeddingOptions): TraceValue {
    this.float(t, 'timestepEmbedding');
    if (t.shape.length !== 1) throw new Error(`timestepEmbedding: timesteps must be (B), got [${t.shape}]`);
    const [B] = t.shape;
    const resolved = resolveTimestepOptions(dim, {
      flipSinToCos: o.flipSinToCos,
      downscaleFreqShift: o.downscaleFreqShift,
      maxPeriod: o.maxPeriod ?? 10000,
    });
    const freq = timestepFrequencies(dim, resolved);
    const half = freq.length;
    const parts: TraceValue[] = [];
    if (half > 0) {
      // a = t·f in fp32, as diffusers computes it; then a − k·2π with k = ⌊a/2π + ½⌋.
      const a = this.mul(this.reshape(t, [B, 1]), this.constant(freq, [1, half], 'timestep_freq'));
      const k = this.op('Floor', [this.add(this.scale(a, INV_TWO_PI), this.scalar(0.5))], a.shape);
      let r = this.sub(a, this.scale(k, TWO_PI_HI));
      r = this.sub(r, this.scale(k, TWO_PI_MID));
      r = this.sub(r, this.scale(k, TWO_PI_LO));
      const sin = this.op('Sin', [r], r.shape);
      const cos = this.op('Cos', [r], r.shape);
      parts.push(...(o.flipSinToCos ? [cos, sin] : [sin, cos]));
    }
    if (dim % 2) parts.push(this.constant(new Float32Array(B), [B, 1], 'zero_pad'));
    return this.concat(parts, 1);
  }
}

// ---------------------------------------------------------------- parameters

/** A safetensors file as the graph sees it: its header and the name the model refers to it by. */
export interface ExternalWeights {
  header: SafetensorsHeader;
  /** The external-data `location` (e.g. "unet/diffusion_pytorch_model.safetensors"). */
  location: string;
}

const STORED_TYPE: Partial<Record<string, OnnxDataTypeCode>> = { F32: OnnxDataType.FLOAT, F16: OnnxDataType.FLOAT16 };

/**
 * Parameters as initializers pointing into safetensors files (external data: location,
 * offset, length). F32 tensors are used as they are; F16 tensors become fp16 initializers
 * followed by a Cast to float32. Each parameter is added once, however often it is asked for.
 */
export class TraceParams implements ParamSource<TraceValue> {
  private readonly made = new Map<string, TraceValue>();

  constructor(
    private readonly tracer: OnnxTracer,
    private readonly files: readonly ExternalWeights[],
    /** Maps a model's parameter name to the file's name. */
    private readonly rename: (name: string) => string = (n) => n,
  ) {}

  private find(name: string) {
    const stored = this.rename(name);
    for (const f of this.files) {
      const info = f.header.byName.get(stored);
      if (info) return { f, info, stored };
    }
    return null;
  }

  has(name: string): boolean {
    return this.find(name) !== null;
  }

  get(name: string, shape: readonly number[]): TraceValue {
    const cached = this.made.get(name);
    if (cached) {
      if (!sameShape(cached.shape, shape)) {
        throw new ParamShapeError(`parameter '${name}' requested as [${cached.shape}] and [${shape}]`);
      }
      return cached;
    }
    const hit = this.find(name);
    if (!hit)
      throw new ParamShapeError(`missing parameter '${this.rename(name)}' (expected shape [${shape.join(', ')}])`);
    const { f, info, stored } = hit;
    if (!sameShape(info.shape, shape)) {
      throw new ParamShapeError(
        `parameter '${stored}' has shape [${info.shape.join(', ')}], the config implies [${shape.join(', ')}]`,
      );
    }
    const dataType = STORED_TYPE[info.dtype];
    if (dataType === undefined)
      throw new ParamShapeError(`parameter '${stored}' is ${info.dtype}; the ONNX export reads F32 and F16`);
    const init = this.tracer.initializer({
      name: stored,
      dims: [...shape],
      dataType,
      external: { location: f.location, offset: info.fileOffset, length: info.byteLength },
    });
    const value = dataType === OnnxDataType.FLOAT ? init : this.tracer.castToFloat(init);
    this.made.set(name, value);
    return value;
  }
}
