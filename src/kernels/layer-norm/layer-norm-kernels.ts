// WGSL forward and backward of LayerNorm over the last dimension, and their dispatch (no
// autograd here: see layer-norm.ts). x is viewed as (R, C): R rows of C values.
//
// Forward and dX: one workgroup per row. The forward walks the row three times: Σx → μ₀,
// then Σ(x − μ₀) and Σ(x − μ₀)² (corrected two-pass: stable for large-mean inputs, unlike
// E[x²] − E[x]²), then writes y and saves μ and rstd per row. dX reduces Σg·w and Σg·w·x̂
// over the row, then writes rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)).
//
// dW, dB reduce over rows, i.e. down columns. A workgroup per column would read with
// stride C, so instead: 64 adjacent columns × 4 row lanes per workgroup, each workgroup
// summing one chunk of rows (coalesced reads), then one invocation per column adds up
// the chunks.
//
// Variants: 'naive' reads scalars and reduces with a tree in workgroup memory, 256
// invocations per row; 'tuned' reads vec4s when C is a multiple of 4, reduces with
// subgroup operations when the device has them, and sizes the row workgroup to about
// four values per invocation (64 for C = 320 or 768, see reduceWorkgroupSize).
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid, grid1d, u32, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { weightStore, weightVariant } from '../../engine/weight-variant.ts';
import {
  meanAndRstd,
  reducingEntry,
  reducingFlavor,
  reduceWorkgroupSize,
  REDUCE_WORKGROUP_SIZES,
  PARAM_SUM_WG,
  paramSumKernel,
} from '../group-norm/norm-reduce.ts';

/** Invocations per workgroup of the naive row kernels and of the column sums. */
export const LAYER_NORM_WG = 256;
const WG = LAYER_NORM_WG;
/** Columns × row lanes of the parameter-gradient workgroup. */
const PARAM_COLS = 64;
const PARAM_LANES = 4;
/** Rows per chunk of the parameter gradients (grown when the chunk count would pass 65535). */
const ROWS_PER_CHUNK = 64;

export type NormVariant = 'naive' | 'tuned';

export interface LayerNormKernelOptions {
  /** Default 'tuned'. */
  variant?: NormVariant;
}

interface Flavor {
  vec4: boolean;
  subgroups: boolean;
  /** Workgroup size of the row kernels. */
  wg: number;
}

const cache = new Map<string, KernelDef>();
const memo = (key: string, make: () => KernelDef): KernelDef => {
  let k = cache.get(key);
  if (!k) cache.set(key, (k = make()));
  return k;
};
const suffix = (f: Flavor) => `${f.vec4 ? '_vec4' : ''}${f.subgroups ? '_subgroups' : ''}_wg${f.wg}`;

// x, y: (R, C); weight, bias: (C); mean, rstd: (R)
const forwardKernel = (f: Flavor): KernelDef =>
  memo(`fwd${suffix(f)}`, () => {
    const WG = f.wg; // this kernel's own size, shadowing the module default
    const { r, lane, width } = reducingFlavor(f);
    return defineKernel({
      name: `layer_norm_forward${suffix(f)}`,
      storage: ['read', 'read', 'read', 'write', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${r.enable}
struct Params { rows: u32, cols: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> weight: array<${lane}>;
@group(0) @binding(2) var<storage, read> bias: array<${lane}>;
@group(0) @binding(3) var<storage, read_write> y: array<${lane}>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${reducingEntry(lane, WG, r)}
  let row = flatWorkgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let n = p.cols / ${width}u;
  let base = row * n;
  let count = f32(p.cols);
${meanAndRstd(lane, WG, r)}
  for (var i = lid; i < n; i += ${WG}u) {
    y[base + i] = (x[base + i] - mu) * rs * weight[i] + bias[i];
  }
  if (lid == 0u) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}`,
    });
  });

// x, dY: (R, C); weight: (C); mean, rstd: (R) → dX: (R, C)
const inputGradKernel = (f: Flavor): KernelDef =>
  memo(`dx${suffix(f)}`, () => {
    const WG = f.wg; // this kernel's own size, shadowing the module default
    const { r, lane, width } = reducingFlavor(f);
    return defineKernel({
      name: `layer_norm_backward_input${suffix(f)}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${r.enable}
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> dY: array<${lane}>;
@group(0) @binding(2) var<storage, read> weight: array<${lane}>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dX: array<${lane}>;
@group(0) @binding(6) var<uniform> p: Params;
${reducingEntry(lane, WG, r)}
  let row = flatWorkgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let n = p.cols / ${width}u;
  let base = row * n;
  let mu = mean[row];
  let rs = rstd[row];
  var acc = vec2f(0.0);
  for (var i = lid; i < n; i += ${WG}u) {
    let gw = dY[base + i] * weight[i];
    acc += vec2f(hsum(gw), hsum(gw * (x[base + i] - mu) * rs));
  }
  let k = reduceSum(acc, lid, ${r.sgArg}) / f32(p.cols);
  for (var i = lid; i < n; i += ${WG}u) {
    let xh = (x[base + i] - mu) * rs;
    dX[base + i] = rs * (dY[base + i] * weight[i] - k.x - xh * k.y);
  }
}`,
    });
  });

// x, dY: (R, C); mean, rstd: (R) → partial: (chunks, C) of (Σg·x̂, Σg) over each chunk's rows
const paramPartialKernel = defineKernel({
  name: 'layer_norm_backward_params_partial',
  storage: ['read', 'read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { rows: u32, cols: u32, rowsPerChunk: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<vec2f>;
@group(0) @binding(5) var<uniform> p: Params;
var<workgroup> lanes: array<vec2f, ${PARAM_COLS * PARAM_LANES}>;
@compute @workgroup_size(${PARAM_COLS}, ${PARAM_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) local: vec3u) {
  let col = wid.x * ${PARAM_COLS}u + local.x;
  let chunk = wid.y;
  let r0 = chunk * p.rowsPerChunk;
  let r1 = min(r0 + p.rowsPerChunk, p.rows);
  var acc = vec2f(0.0);
  if (col < p.cols) {
    for (var r = r0 + local.y; r < r1; r += ${PARAM_LANES}u) {
      let i = r * p.cols + col;
      let g = dY[i];
      acc += vec2f(g * (x[i] - mean[r]) * rstd[r], g);
    }
  }
  lanes[local.y * ${PARAM_COLS}u + local.x] = acc;
  workgroupBarrier();
  if (local.y == 0u && col < p.cols) {
    var total = acc;
    for (var l = 1u; l < ${PARAM_LANES}u; l++) { total += lanes[l * ${PARAM_COLS}u + local.x]; }
    partial[chunk * p.cols + col] = total;
  }
}`,
});

export interface LayerNormShape {
  rows: number;
  cols: number;
}

/**
 * Validates x: (…, C), weight/bias: (C). x may be fp16 (an inference activation, see
 * activationDtype; the kernels store it through half-storage) and weight/bias frozen fp16
 * weights (read through weightVariant); the statistics are f32.
 */
export function layerNormShape(x: Tensor, weight: Tensor, bias: Tensor | null): LayerNormShape {
  if (x.dtype === 'f16' && !x.engine.f16) throw new Error(`layerNorm: fp16 activations need shader-f16, got ${x}`);
  if (x.rank < 1) throw new Error(`layerNorm: x must be (…, C), got a scalar`);
  const cols = x.shape[x.rank - 1];
  for (const [t, what] of [
    [weight, 'weight'],
    [bias, 'bias'],
  ] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== cols)) {
      throw new Error(`layerNorm: ${what} must be (${cols}), got [${t.shape.join(',')}]`);
    }
  }
  return { rows: cols === 0 ? 0 : x.size / cols, cols };
}

/** `kernel` reading fp16 weight and bias (frozen fp16 parameters) as f16 or packed pairs. */
const withParams = (engine: Engine, kernel: KernelDef, weight: Tensor, bias: Tensor | null): KernelDef => {
  const k = weightVariant(kernel, 'weight', weightStore(engine, weight));
  return bias ? weightVariant(k, 'bias', weightStore(engine, bias)) : k;
};

function flavor(engine: Engine, s: LayerNormShape, options: LayerNormKernelOptions): Flavor {
  if ((options.variant ?? 'tuned') === 'naive') return { vec4: false, subgroups: false, wg: WG };
  const vec4 = s.cols % 4 === 0;
  return { vec4, subgroups: engine.info.subgroups, wg: reduceWorkgroupSize(s.cols / (vec4 ? 4 : 1)) };
}

export interface LayerNormForwardResult {
  /** Same shape as x. */
  y: Tensor;
  /** (R): x's leading dimensions flattened */
  mean: Tensor;
  /** (R): 1/√(σ² + ε) */
  rstd: Tensor;
}

// x: (…, C); weight, bias: (C) → y: like x; mean, rstd: (R) with R = x.size / C
export function layerNormForward(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
  options: LayerNormKernelOptions = {},
): LayerNormForwardResult {
  const s = layerNormShape(x, weight, bias);
  // y has x's dtype (fp16 activations stay fp16); μ and rstd stay f32.
  const y = engine.empty(x.shape, x.dtype);
  const mean = engine.empty([s.rows]);
  const rstd = engine.empty([s.rows]);
  engine.dispatch(
    withParams(engine, forwardKernel(flavor(engine, s, options)), weight, bias),
    [x, weight, bias, y, mean, rstd],
    grid(s.rows),
    [u32(s.rows), u32(s.cols), f32(eps)],
  );
  return { y, mean, rstd };
}

export interface LayerNormGrads {
  /** Like x; null when not asked for. */
  dX: Tensor | null;
  /** (C) */
  dW: Tensor | null;
  /** (C) */
  dB: Tensor | null;
}

export interface LayerNormBackwardOptions extends LayerNormKernelOptions {
  /** Which gradients to compute (default all). */
  need?: { x?: boolean; weight?: boolean; bias?: boolean };
}

// x, dY: (…, C); weight: (C); mean, rstd: (R) from the forward → dX: like x, dW, dB: (C)
export function layerNormBackward(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dY: Tensor,
  options: LayerNormBackwardOptions = {},
): LayerNormGrads {
  const s = layerNormShape(x, weight, null);
  // fp16 activations are inference-only (activationDtype): the backward is f32.
  if (x.dtype !== 'f32') throw new Error(`layerNorm backward: f32 activations only, got ${x}`);
  if (dY.size !== x.size || dY.dtype !== 'f32') throw new Error(`layerNorm backward: dY ${dY} for x ${x}`);
  const needW = options.need?.weight ?? true;
  const needB = options.need?.bias ?? true;
  const out: LayerNormGrads = { dX: null, dW: null, dB: null };
  if (options.need?.x ?? true) {
    out.dX = engine.empty(x.shape);
    engine.dispatch(
      withParams(engine, inputGradKernel(flavor(engine, s, options)), weight, null),
      [x, dY, weight, mean, rstd, out.dX],
      grid(s.rows),
      [u32(s.rows), u32(s.cols)],
    );
  }
  if (needW || needB) {
    const rowsPerChunk = Math.max(ROWS_PER_CHUNK, Math.ceil(s.rows / 65535));
    const chunks = Math.ceil(s.rows / rowsPerChunk);
    const partial = engine.empty([chunks, s.cols, 2]);
    engine.dispatch(
      paramPartialKernel,
      [x, dY, mean, rstd, partial],
      [Math.ceil(s.cols / PARAM_COLS), chunks],
      [u32(s.rows), u32(s.cols), u32(rowsPerChunk)],
    );
    const dW = engine.empty([s.cols]);
    const dB = engine.empty([s.cols]);
    engine.dispatch(paramSumKernel, [partial, dW, dB], grid1d(s.cols, PARAM_SUM_WG), [u32(s.cols), u32(chunks)]);
    partial.dispose();
    if (needW) out.dW = dW;
    else dW.dispose();
    if (needB) out.dB = dB;
    else dB.dispose();
  }
  return out;
}

const flavors = (subgroups: boolean): Flavor[] =>
  [false, true].flatMap((vec4) => REDUCE_WORKGROUP_SIZES.map((wg) => ({ vec4, subgroups, wg })));

/** Every kernel that runs without subgroups (compile tests, benchmarks). */
export const layerNormKernels: KernelDef[] = [
  ...flavors(false).flatMap((f) => [forwardKernel(f), inputGradKernel(f)]),
  paramPartialKernel,
  paramSumKernel,
];

/** The subgroup variants: only for devices with `engine.info.subgroups`. */
export const layerNormSubgroupKernels: KernelDef[] = flavors(true).flatMap((f) => [
  forwardKernel(f),
  inputGradKernel(f),
]);
