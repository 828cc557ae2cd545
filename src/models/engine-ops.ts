// The engine backend of the tensor interface: eager WebGPU kernels with autograd. Model
// code written against TensorOps runs here for tuning, training and inference.
import { checkpoint } from '../engine/checkpoint.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { attention } from '../kernels/attention/attention.ts';
import { add, mul, scale, sub } from '../kernels/binary/binary.ts';
import { concat } from '../kernels/concat/concat.ts';
import { conv2d } from '../kernels/conv2d/conv2d.ts';
import { embedding } from '../kernels/embedding/embedding.ts';
import { geglu } from '../kernels/geglu/geglu.ts';
import { gelu } from '../kernels/gelu/gelu.ts';
import { groupNorm } from '../kernels/group-norm/group-norm.ts';
import { layerNorm } from '../kernels/layer-norm/layer-norm.ts';
import { linear } from '../kernels/linear/linear.ts';
import { matmul } from '../kernels/matmul/matmul.ts';
import { quickGelu } from '../kernels/quick-gelu/quick-gelu.ts';
import { mean } from '../kernels/reduce/reduce.ts';
import { silu } from '../kernels/silu/silu.ts';
import { slice } from '../kernels/concat/slice.ts';
import { timestepEmbedding } from '../kernels/timestep-embedding/timestep-embedding.ts';
import { transpose } from '../kernels/transpose/transpose.ts';
import { upsampleNearest2x } from '../kernels/upsample/upsample.ts';
import { normalizePadding } from './shape-ops.ts';
import type { AttentionOptions, ConvOptions, TensorOps, TimestepEmbeddingOptions } from './tensor-ops.ts';

/** Token ids come from the CPU (the tokenizer); their shape travels with them. */
export interface EngineIds {
  data: Int32Array;
  shape: readonly number[];
}

/** Timesteps: plain numbers (sampling, data) or a tensor (when t itself is differentiated). */
export type EngineTimes = readonly number[] | Tensor;

export class EngineOps implements TensorOps<Tensor, EngineIds, EngineTimes> {
  readonly backend = 'engine' as const;

  /**
   * `halfActivations`: keep activations fp16 wherever gradients are off (inference), on an
   * adapter with shader-f16 — half the activation memory, all math still in f32.
   */
  constructor(
    readonly engine: Engine,
    readonly options: { halfActivations?: boolean } = {},
  ) {
    if (options.halfActivations && !engine.f16) {
      throw new Error('fp16 activations need an adapter with shader-f16; this one has none');
    }
  }

  shape = (x: Tensor) => x.shape;
  checkpoint = (fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[]) => checkpoint(this.engine, fn, inputs);
  release = (x: Tensor) => {
    if (!this.engine.isGradEnabled) x.dispose();
  };
  isGradEnabled = () => this.engine.isGradEnabled;
  toActivation = (x: Tensor) => {
    const want = this.options.halfActivations && !this.engine.isGradEnabled ? 'f16' : 'f32';
    return x.dtype === want ? x : this.engine.cast(x, want);
  };
  toFloat32 = (x: Tensor) => (x.dtype === 'f32' ? x : this.engine.cast(x, 'f32'));
  constant = (values: ArrayLike<number>, shape: readonly number[]) => this.engine.tensor(values, shape);
  linear = (x: Tensor, w: Tensor, b?: Tensor | null) => linear(x, w, b ?? null);
  matmul = (a: Tensor, b: Tensor) => matmul(a, b);

  conv2d(x: Tensor, w: Tensor, b: Tensor | null, o: ConvOptions = {}) {
    const [top, left, bottom, right] = normalizePadding(o.padding);
    return conv2d(x, w, b, { stride: o.stride ?? 1, padding: { top, left, bottom, right } });
  }

  groupNorm = (x: Tensor, groups: number, w: Tensor, b: Tensor, eps: number, o: { silu?: boolean } = {}) =>
    groupNorm(x, groups, w, b, eps, { silu: o.silu ?? false });
  layerNorm = (x: Tensor, w: Tensor, b: Tensor, eps: number) => layerNorm(x, w, b, eps);
  attention = (q: Tensor, k: Tensor, v: Tensor, heads: number, o: AttentionOptions = {}) => attention(q, k, v, heads, o);

  silu = (x: Tensor) => silu(x);
  gelu = (x: Tensor) => gelu(x);
  quickGelu = (x: Tensor) => quickGelu(x);
  geglu = (x: Tensor) => geglu(x);

  add = (a: Tensor, b: Tensor) => add(a, b);
  sub = (a: Tensor, b: Tensor) => sub(a, b);
  mul = (a: Tensor, b: Tensor) => mul(a, b);
  scale = (x: Tensor, s: number) => scale(x, s);
  mean = (x: Tensor, axes: readonly number[], keepDims = false) => mean(x, axes, keepDims);

  reshape = (x: Tensor, shape: readonly number[]) => x.reshape(shape);
  transpose = (x: Tensor, perm: readonly number[]) => transpose(x, perm);
  concat = (xs: readonly Tensor[], axis: number) => concat(xs, axis);
  slice = (x: Tensor, axis: number, start: number, length: number) => slice(x, axis, start, length);
  upsampleNearest2x = (x: Tensor) => upsampleNearest2x(x);

  broadcastTo(x: Tensor, shape: readonly number[]) {
    // A zero tensor of the target shape plus x: the add's backward sums dY back to x's shape.
    return add(this.engine.zeros(shape, x.dtype), x);
  }

  embedding = (ids: EngineIds, table: Tensor) => embedding(ids.data, table, ids.shape);

  timestepEmbedding(t: EngineTimes, dim: number, o: TimestepEmbeddingOptions) {
    const opts = { flipSinToCos: o.flipSinToCos, downscaleFreqShift: o.downscaleFreqShift, maxPeriod: o.maxPeriod ?? 10000 };
    return 'engine' in t ? timestepEmbedding(t, dim, opts) : timestepEmbedding(this.engine, t, dim, opts);
  }
}
