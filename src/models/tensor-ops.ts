// The small tensor interface every network in src/models is written against (docs/architecture.md).
// Four implementations:
//   engine-ops.ts    — eager WebGPU tensors with autograd (tuning, training, inference);
//   onnx tracer      — records the same calls as ONNX nodes (src/onnx);
//   shape-ops.ts     — shapes only: lists a model's parameters and checks configs, no GPU;
//   reference-ops.ts — float64 CPU loops (the kernels' references): ground truth for tests.
// Shapes follow PyTorch: images (B, C, H, W), sequences (B, N, C), weights (out, in).

export interface ConvOptions {
  stride?: number;
  /** Zero padding: one number for all sides, or [top, left, bottom, right]. */
  padding?: number | readonly [number, number, number, number];
}

export interface AttentionOptions {
  /** Default 1/√D. */
  scale?: number;
  /** Key j visible to query i iff j ≤ i (CLIP text). */
  causal?: boolean;
}

export interface TimestepEmbeddingOptions {
  flipSinToCos: boolean;
  downscaleFreqShift: number;
  maxPeriod?: number;
}

/**
 * T is the backend's tensor, Ids its integer-index input (token ids), Times its timestep
 * input. Every method returns a new T and never mutates its arguments.
 */
export interface TensorOps<T, Ids = unknown, Times = unknown> {
  readonly backend: 'engine' | 'onnx' | 'shape' | 'reference';
  shape(x: T): readonly number[];
  /**
   * Gradient checkpointing (engine only): run `fn` without keeping its intermediates and
   * recompute it in backward. Every tensor in `fn` that needs a gradient must be in `inputs`
   * (parameters, which are leaves, may be captured).
   */
  checkpoint?(fn: (...inputs: T[]) => T, inputs: readonly T[]): T;
  /**
   * Engine only: the caller is done with `x`, an intermediate it created itself (never an
   * argument it was given, a parameter or a result). Without gradients its memory goes back
   * to the pool now instead of when the enclosing scope ends — at 512 px one VAE activation
   * is 128–256 MiB; with gradients it does nothing (the tape may still need x).
   */
  release?(x: T): void;
  /**
   * Engine only: whether gradients are recorded now (false inside noGrad). Inference-only
   * rearrangements (the UNet's feed-forward in token chunks) run only where this says false;
   * backends without it are treated as recording.
   */
  isGradEnabled?(): boolean;
  /**
   * Engine only: `x` in the dtype this backend keeps activations in — fp16 at inference
   * (no gradients) when the runtime asked for fp16 activations, else fp32. Models call it
   * where data enters a network (sample, context, time embedding); see activations.ts.
   */
  toActivation?(x: T): T;
  /** Engine only: `x` as fp32 (a network's output, for samplers and images). */
  toFloat32?(x: T): T;
  /** A constant tensor (masks, fixed inputs): never requires grad. */
  constant(values: ArrayLike<number>, shape: readonly number[]): T;

  // linear algebra
  /** x: (…, in), weight: (out, in), bias: (out) → (…, out) */
  linear(x: T, weight: T, bias?: T | null): T;
  /** a: (…, M, K), b: (…, K, N) → (…, M, N) */
  matmul(a: T, b: T): T;
  /** x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw), bias: (Cout) → (B, Cout, Ho, Wo) */
  conv2d(x: T, weight: T, bias: T | null, options?: ConvOptions): T;

  // normalisation
  /** x: (B, C, …), weight/bias: (C); `silu` fuses the activation that usually follows. */
  groupNorm(x: T, groups: number, weight: T, bias: T, eps: number, options?: { silu?: boolean }): T;
  /** x: (…, C), weight/bias: (C) */
  layerNorm(x: T, weight: T, bias: T, eps: number): T;

  // attention: q (B, Nq, H·D), k/v (B, Nk, H·D) → (B, Nq, H·D)
  attention(q: T, k: T, v: T, heads: number, options?: AttentionOptions): T;

  // activations
  silu(x: T): T;
  gelu(x: T): T;
  quickGelu(x: T): T;
  /** (…, 2F) → (…, F): first half · gelu(second half) */
  geglu(x: T): T;

  // element-wise with numpy broadcasting
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  scale(x: T, s: number): T;

  // reductions
  /** Mean over `axes` (kept as size-1 dims when keepDims). */
  mean(x: T, axes: readonly number[], keepDims?: boolean): T;

  // layout
  reshape(x: T, shape: readonly number[]): T;
  transpose(x: T, perm: readonly number[]): T;
  concat(xs: readonly T[], axis: number): T;
  /** The `length` entries from `start` along `axis`. */
  slice(x: T, axis: number, start: number, length: number): T;
  /** Repeat size-1 dims to `shape` (numpy broadcasting rules). */
  broadcastTo(x: T, shape: readonly number[]): T;
  /** x: (B, C, H, W) → (B, C, 2H, 2W) */
  upsampleNearest2x(x: T): T;

  // embeddings
  /** ids: (…), table: (V, C) → (…, C) */
  embedding(ids: Ids, table: T): T;
  /** timesteps: (B) → (B, dim), as diffusers' get_timestep_embedding */
  timestepEmbedding(timesteps: Times, dim: number, options: TimestepEmbeddingOptions): T;
}
