// WGSL forward and backward of GroupNorm (optionally fused with SiLU), and their dispatch
// (no autograd here: see group-norm.ts).
//
// Forward: one workgroup per (batch, group). In (B, C, S) layout a group's channels are
// contiguous, so the workgroup walks one contiguous span of Cg·S values three times:
// Σx → μ₀, then Σ(x − μ₀) and Σ(x − μ₀)² (the corrected two-pass algorithm: stable for
// inputs with a large mean, unlike E[x²] − E[x]², and the Σ(x − μ₀) term repairs the
// rounding of μ₀), then it writes y and saves μ and rstd per (batch, group).
//
// Backward, four dispatches:
//   1. channel stats, one workgroup per (b, c): Σ_s g·x̂ and Σ_s g (g = dY, times SiLU'(z)
//      when fused). Reducing x̂ rather than x keeps large-mean inputs stable here too.
//   2. group coefficients, one invocation per (b, group): Σ_c w·Σg / N and Σ_c w·Σg·x̂ / N.
//   3. dX, one invocation per element (per vec4 when tuned): rstd·(g·w − c₁ − x̂·c₂).
//   4. dW, dB, one invocation per channel: the channel stats summed over the batch.
// The tuned variant fuses 2–4 into one dispatch (one workgroup per (b, c), see
// fusedInputGradKernel); the naive variant keeps all four as its reference.
//
// Variants: 'naive' reads scalars and reduces with a tree in workgroup memory, 256
// invocations per workgroup; 'tuned' reads vec4s when the spatial size is a multiple of
// 4 (then no vec4 straddles two channels), reduces with subgroup operations when the
// device has them, and sizes each reducing workgroup to about four values per invocation
// (64–256, see reduceWorkgroupSize).
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { weightStore, weightVariant } from '../../engine/weight-variant.ts';
import {
  laneHelpers,
  meanAndRstd,
  PARAM_SUM_WG,
  paramSumKernel,
  reduceWorkgroupSize,
  reducingEntry,
  reducingFlavor,
  REDUCE_WORKGROUP_SIZES,
} from './norm-reduce.ts';

/** Invocations per workgroup of the element-wise kernels, and of every naive kernel. */
export const GROUP_NORM_WG = 256;
const WG = GROUP_NORM_WG;

export type NormVariant = 'naive' | 'tuned';

export interface GroupNormKernelOptions {
  /** Fuse SiLU after the affine transform (UNet/VAE resnet blocks). */
  silu?: boolean;
  /** Default 'tuned'. */
  variant?: NormVariant;
}

interface Flavor {
  silu: boolean;
  vec4: boolean;
  subgroups: boolean;
}
/** A reducing kernel's flavor also fixes its workgroup size. */
type ReduceFlavor = Flavor & { wg: number };

const cache = new Map<string, KernelDef>();
const memo = (key: string, make: () => KernelDef): KernelDef => {
  let k = cache.get(key);
  if (!k) cache.set(key, (k = make()));
  return k;
};
const suffix = (f: Partial<ReduceFlavor>) =>
  `${f.silu ? '_silu' : ''}${f.vec4 ? '_vec4' : ''}${f.subgroups ? '_subgroups' : ''}${f.wg ? `_wg${f.wg}` : ''}`;

// x, y: (B, C, S) viewed as (B·G, Cg·S); weight, bias: (C); mean, rstd: (B·G)
const forwardKernel = (f: ReduceFlavor): KernelDef =>
  memo(`fwd${suffix(f)}`, () => {
    const WG = f.wg; // this kernel's own size, shadowing the module default
    const { r, lane, width } = reducingFlavor(f);
    return defineKernel({
      name: `group_norm_forward${suffix(f)}`,
      storage: ['read', 'read', 'read', 'write', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${r.enable}
struct Params { groups: u32, channelsPerGroup: u32, spatial: u32, count: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<${lane}>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${reducingEntry(lane, WG, r)}
  let bg = flatWorkgroup(wid, nwg);
  if (bg >= p.count) { return; }
  let n = p.channelsPerGroup * p.spatial / ${width}u;
  let base = bg * n;
  let count = f32(n * ${width}u);
${meanAndRstd(lane, WG, r)}
  let c0 = (bg % p.groups) * p.channelsPerGroup;
  for (var i = lid; i < n; i += ${WG}u) {
    let c = c0 + i * ${width}u / p.spatial;
    let z = (x[base + i] - mu) * (rs * weight[c]) + bias[c];
    y[base + i] = ${f.silu ? 'silu(z)' : 'z'};
  }
  if (lid == 0u) {
    mean[bg] = mu;
    rstd[bg] = rs;
  }
}`,
    });
  });

// x, dY: (B, C, S); weight, bias: (C); mean, rstd: (B·G) → stats: (B·C) of (Σg·x̂, Σg)
const channelStatsKernel = (f: ReduceFlavor): KernelDef =>
  memo(`stats${suffix(f)}`, () => {
    const WG = f.wg; // this kernel's own size, shadowing the module default
    const { r, lane, width } = reducingFlavor(f);
    return defineKernel({
      name: `group_norm_backward_channel_stats${suffix(f)}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${r.enable}
struct Params { channels: u32, channelsPerGroup: u32, spatial: u32, count: u32, groups: u32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> dY: array<${lane}>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<vec2f>;
@group(0) @binding(7) var<uniform> p: Params;
${reducingEntry(lane, WG, r)}
  let bc = flatWorkgroup(wid, nwg);
  if (bc >= p.count) { return; }
  let c = bc % p.channels;
  let bg = (bc / p.channels) * p.groups + c / p.channelsPerGroup;
  let mu = mean[bg];
  let rs = rstd[bg];
  let w = weight[c];
  let b = bias[c];
  let n = p.spatial / ${width}u;
  let base = bc * n;
  var acc = vec2f(0.0);
  for (var i = lid; i < n; i += ${WG}u) {
    let xh = (x[base + i] - mu) * rs;
    let g = dY[base + i]${f.silu ? ' * siluGrad(xh * w + b)' : ''};
    acc += vec2f(hsum(g * xh), hsum(g));
  }
  let total = reduceSum(acc, lid, ${r.sgArg});
  if (lid == 0u) { stats[bc] = total; }
}`,
    });
  });

// stats: (B·C) of (Σg·x̂, Σg); weight: (C) → coef: (B·G) of (Σw·Σg / N, Σw·Σg·x̂ / N)
const coefficientsKernel = defineKernel({
  name: 'group_norm_backward_coefficients',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { groups: u32, channelsPerGroup: u32, spatial: u32, count: u32 }
@group(0) @binding(0) var<storage, read> stats: array<vec2f>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> coef: array<vec2f>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bg = flatIndex(wid, nwg, lid, ${WG}u);
  if (bg >= p.count) { return; }
  // (b·G + g)·Cg is the stats index of the group's first channel.
  let first = bg * p.channelsPerGroup;
  let c0 = (bg % p.groups) * p.channelsPerGroup;
  var acc = vec2f(0.0);
  for (var k = 0u; k < p.channelsPerGroup; k++) { acc += weight[c0 + k] * stats[first + k]; }
  coef[bg] = acc.yx / f32(p.channelsPerGroup * p.spatial);
}`,
});

// x, dY: (B, C, S); weight, bias: (C); mean, rstd: (B·G); coef: (B·G) → dX: (B, C, S)
const inputGradKernel = (f: Pick<Flavor, 'silu' | 'vec4'>): KernelDef =>
  memo(`dx${suffix(f)}`, () => {
    const lane = f.vec4 ? 'vec4f' : 'f32';
    const width = f.vec4 ? 4 : 1;
    return defineKernel({
      name: `group_norm_backward_input${suffix(f)}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { channels: u32, channelsPerGroup: u32, spatial: u32, n: u32, groups: u32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> dY: array<${lane}>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read> coef: array<vec2f>;
@group(0) @binding(7) var<storage, read_write> dX: array<${lane}>;
@group(0) @binding(8) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${laneHelpers(lane)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${WG}u);
  if (i >= p.n) { return; }
  let bc = i * ${width}u / p.spatial;
  let c = bc % p.channels;
  let bg = (bc / p.channels) * p.groups + c / p.channelsPerGroup;
  let rs = rstd[bg];
  let xh = (x[i] - mean[bg]) * rs;
  let w = weight[c];
  let g = dY[i]${f.silu ? ' * siluGrad(xh * w + bias[c])' : ''};
  let k = coef[bg];
  dX[i] = rs * (g * w - k.x - xh * k.y);
}`,
    });
  });

// x, dY: (B, C, S); weight, bias: (C); mean, rstd: (B·G); stats: (B·C) of (Σg·x̂, Σg)
//   → dX: (B, C, S), dW, dB: (C)
// Tuned: steps 2–4 in one dispatch, one workgroup per (b, c). Each workgroup derives its
// group's coefficients from the Cg channel stats itself (Cg uniform loads, cheaper than a
// dispatch), walks its channel's contiguous span with no per-element index arithmetic, and
// the batch-0 workgroup of each channel also sums the channel's stats over the batch.
const fusedInputGradKernel = (f: ReduceFlavor): KernelDef =>
  memo(`dxfused${suffix(f)}`, () => {
    const WG = f.wg; // this kernel's own size, shadowing the module default
    const lane = f.vec4 ? 'vec4f' : 'f32';
    const width = f.vec4 ? 4 : 1;
    return defineKernel({
      name: `group_norm_backward_input_fused${suffix(f)}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { channels: u32, channelsPerGroup: u32, spatial: u32, count: u32, groups: u32, batch: u32 }
@group(0) @binding(0) var<storage, read> x: array<${lane}>;
@group(0) @binding(1) var<storage, read> dY: array<${lane}>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;
@group(0) @binding(7) var<storage, read_write> dX: array<${lane}>;
@group(0) @binding(8) var<storage, read_write> dW: array<f32>;
@group(0) @binding(9) var<storage, read_write> dB: array<f32>;
@group(0) @binding(10) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${laneHelpers(lane)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bc = flatWorkgroup(wid, nwg);
  if (bc >= p.count) { return; }
  let c = bc % p.channels;
  let b = bc / p.channels;
  let gc = c / p.channelsPerGroup;
  let bg = b * p.groups + gc;
  // Same summation order as the coefficients kernel, so naive and tuned agree closely.
  let first = bg * p.channelsPerGroup;
  let c0 = gc * p.channelsPerGroup;
  var sums = vec2f(0.0);
  for (var k = 0u; k < p.channelsPerGroup; k++) { sums += weight[c0 + k] * stats[first + k]; }
  let coef = sums.yx / f32(p.channelsPerGroup * p.spatial);
  let mu = mean[bg];
  let rs = rstd[bg];
  let w = weight[c];
  let bi = bias[c];
  let n = p.spatial / ${width}u;
  let base = bc * n;
  for (var i = lid; i < n; i += ${WG}u) {
    let xh = (x[base + i] - mu) * rs;
    let g = dY[base + i]${f.silu ? ' * siluGrad(xh * w + bi)' : ''};
    dX[base + i] = rs * (g * w - coef.x - xh * coef.y);
  }
  if (b == 0u && lid == 0u) {
    var acc = vec2f(0.0);
    for (var j = 0u; j < p.batch; j++) { acc += stats[j * p.channels + c]; }
    dW[c] = acc.x;
    dB[c] = acc.y;
  }
}`,
    });
  });

export interface GroupNormShape {
  batch: number;
  channels: number;
  spatial: number;
  groups: number;
  channelsPerGroup: number;
}

/**
 * Validates x: (B, C, ...spatial), weight/bias: (C), C divisible by groups. x may be fp16
 * (an inference activation, see activationDtype; the kernels store it through half-storage)
 * and weight/bias frozen fp16 weights (read through weightVariant); the statistics are f32.
 */
export function groupNormShape(x: Tensor, groups: number, weight: Tensor, bias: Tensor): GroupNormShape {
  if (x.dtype === 'f16' && !x.engine.f16) throw new Error(`groupNorm: fp16 activations need shader-f16, got ${x}`);
  if (x.rank < 2) throw new Error(`groupNorm: x must be (B, C, ...spatial), got [${x.shape.join(',')}]`);
  const [batch, channels] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(`groupNorm: ${channels} channels cannot be split into ${groups} groups`);
  }
  for (const [t, what] of [
    [weight, 'weight'],
    [bias, 'bias'],
  ] as const) {
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new Error(`groupNorm: ${what} must be (${channels}), got [${t.shape.join(',')}]`);
    }
  }
  const spatial = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return { batch, channels, spatial, groups, channelsPerGroup: channels / groups };
}

/** `kernel` reading fp16 weight and bias (frozen fp16 parameters) as f16 or packed pairs. */
const withParams = (engine: Engine, kernel: KernelDef, weight: Tensor, bias: Tensor | null): KernelDef => {
  const k = weightVariant(kernel, 'weight', weightStore(engine, weight));
  return bias ? weightVariant(k, 'bias', weightStore(engine, bias)) : k;
};

function flavor(engine: Engine, s: GroupNormShape, options: GroupNormKernelOptions): Flavor {
  const tuned = (options.variant ?? 'tuned') === 'tuned';
  return { silu: !!options.silu, vec4: tuned && s.spatial % 4 === 0, subgroups: tuned && engine.info.subgroups };
}

/** Tuned kernels size the workgroup to the values each one reduces (`count` scalars). */
function reducing(f: Flavor, options: GroupNormKernelOptions, count: number): ReduceFlavor {
  const tuned = (options.variant ?? 'tuned') === 'tuned';
  return { ...f, wg: tuned ? reduceWorkgroupSize(count / (f.vec4 ? 4 : 1)) : WG };
}

/**
 * The backward's per-channel workgroups get about sixteen values per invocation (64–256
 * invocations) rather than four: on lavapipe, 64 invocations over a 64×64 channel ran the
 * backward about twice as fast as 256, and a channel span of a few thousand values still
 * keeps each invocation's loop short on a GPU.
 */
function backwardReducing(f: Flavor, options: GroupNormKernelOptions, count: number): ReduceFlavor {
  return reducing(f, options, count / 4);
}

export interface GroupNormForwardResult {
  /** Same shape as x. */
  y: Tensor;
  /** (B, G) */
  mean: Tensor;
  /** (B, G): 1/√(σ² + ε) */
  rstd: Tensor;
}

// x: (B, C, ...spatial); weight, bias: (C) → y: like x; mean, rstd: (B, G)
export function groupNormForward(
  engine: Engine,
  x: Tensor,
  groups: number,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
  options: GroupNormKernelOptions = {},
): GroupNormForwardResult {
  const s = groupNormShape(x, groups, weight, bias);
  // y has x's dtype (fp16 activations stay fp16); μ and rstd stay f32.
  const y = engine.empty(x.shape, x.dtype);
  const mean = engine.empty([s.batch, groups]);
  const rstd = engine.empty([s.batch, groups]);
  const count = s.batch * groups;
  const f = reducing(flavor(engine, s, options), options, s.channelsPerGroup * s.spatial);
  engine.dispatch(withParams(engine, forwardKernel(f), weight, bias), [x, weight, bias, y, mean, rstd], grid(count), [
    u32(groups),
    u32(s.channelsPerGroup),
    u32(s.spatial),
    u32(count),
    f32(eps),
  ]);
  return { y, mean, rstd };
}

export interface GroupNormGrads {
  /** Like x; null when not asked for. */
  dX: Tensor | null;
  /** (C) */
  dW: Tensor | null;
  /** (C) */
  dB: Tensor | null;
}

export interface GroupNormBackwardOptions extends GroupNormKernelOptions {
  /** Which gradients to compute (default all). */
  need?: { x?: boolean; weight?: boolean; bias?: boolean };
}

// x, dY: (B, C, ...spatial); weight, bias: (C); mean, rstd: (B, G) from the forward
//   → dX: like x, dW, dB: (C)
export function groupNormBackward(
  engine: Engine,
  x: Tensor,
  groups: number,
  weight: Tensor,
  bias: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dY: Tensor,
  options: GroupNormBackwardOptions = {},
): GroupNormGrads {
  const s = groupNormShape(x, groups, weight, bias);
  // fp16 activations are inference-only (activationDtype): the backward is f32.
  if (x.dtype !== 'f32') throw new Error(`groupNorm backward: f32 activations only, got ${x}`);
  if (dY.size !== x.size || dY.dtype !== 'f32') throw new Error(`groupNorm backward: dY ${dY} for x ${x}`);
  const needX = options.need?.x ?? true;
  const needParams = (options.need?.weight ?? true) || (options.need?.bias ?? true);
  const out: GroupNormGrads = { dX: null, dW: null, dB: null };
  if (!needX && !needParams) return out;
  const f = flavor(engine, s, options);
  const bc = s.batch * s.channels;
  const stats = engine.empty([bc, 2]);
  const statsKernel = channelStatsKernel(backwardReducing(f, options, s.spatial));
  engine.dispatch(withParams(engine, statsKernel, weight, bias), [x, dY, weight, bias, mean, rstd, stats], grid(bc), [
    u32(s.channels),
    u32(s.channelsPerGroup),
    u32(s.spatial),
    u32(bc),
    u32(groups),
  ]);
  const tuned = (options.variant ?? 'tuned') === 'tuned';
  if (needX && tuned) {
    out.dX = engine.empty(x.shape);
    const dW = engine.empty([s.channels]);
    const dB = engine.empty([s.channels]);
    // It reduces nothing across invocations, so one kernel serves with or without subgroups.
    const rf = { ...backwardReducing(f, options, s.spatial), subgroups: false };
    engine.dispatch(
      withParams(engine, fusedInputGradKernel(rf), weight, bias),
      [x, dY, weight, bias, mean, rstd, stats, out.dX, dW, dB],
      grid(bc),
      [u32(s.channels), u32(s.channelsPerGroup), u32(s.spatial), u32(bc), u32(groups), u32(s.batch)],
    );
    if (needParams && (options.need?.weight ?? true)) out.dW = dW;
    else dW.dispose();
    if (needParams && (options.need?.bias ?? true)) out.dB = dB;
    else dB.dispose();
    stats.dispose();
    return out;
  }
  if (needX) {
    const bg = s.batch * groups;
    const coef = engine.empty([bg, 2]);
    engine.dispatch(withParams(engine, coefficientsKernel, weight, null), [stats, weight, coef], grid1d(bg, WG), [
      u32(groups),
      u32(s.channelsPerGroup),
      u32(s.spatial),
      u32(bg),
    ]);
    out.dX = engine.empty(x.shape);
    const lanes = x.size / (f.vec4 ? 4 : 1);
    const dxKernel = inputGradKernel({ silu: f.silu, vec4: f.vec4 });
    engine.dispatch(
      withParams(engine, dxKernel, weight, bias),
      [x, dY, weight, bias, mean, rstd, coef, out.dX],
      grid1d(lanes, WG),
      [u32(s.channels), u32(s.channelsPerGroup), u32(s.spatial), u32(lanes), u32(groups)],
    );
    coef.dispose();
  }
  if (needParams) {
    const dW = engine.empty([s.channels]);
    const dB = engine.empty([s.channels]);
    engine.dispatch(paramSumKernel, [stats, dW, dB], grid1d(s.channels, PARAM_SUM_WG), [u32(s.channels), u32(s.batch)]);
    if (options.need?.weight ?? true) out.dW = dW;
    else dW.dispose();
    if (options.need?.bias ?? true) out.dB = dB;
    else dB.dispose();
  }
  stats.dispose();
  return out;
}

const flavors = (subgroups: boolean): Flavor[] =>
  [false, true].flatMap((silu) => [false, true].map((vec4) => ({ silu, vec4, subgroups })));
const sized = (f: Flavor): ReduceFlavor[] => REDUCE_WORKGROUP_SIZES.map((wg) => ({ ...f, wg }));

/** Every kernel that runs without subgroups (compile tests, benchmarks). */
export const groupNormKernels: KernelDef[] = [
  ...flavors(false).flatMap((f) => [
    ...sized(f).flatMap((r) => [forwardKernel(r), channelStatsKernel(r), fusedInputGradKernel(r)]),
    inputGradKernel(f),
  ]),
  coefficientsKernel,
  paramSumKernel,
];

/** The subgroup variants: only for devices with `engine.info.subgroups`. */
export const groupNormSubgroupKernels: KernelDef[] = flavors(true)
  .flatMap(sized)
  .flatMap((r) => [forwardKernel(r), channelStatsKernel(r)]);
