// Workgroup-wide sum of a vec2f in WGSL, shared by the normalisation kernels (group norm,
// layer norm). Two sums at once because every norm kernel needs a pair (Σd, Σd²) forward,
// (Σg·x̂, Σg) backward, and a pair costs the same barriers as one.
//
// Without subgroups: a tree over workgroup memory (log2(WG) barrier steps).
// With subgroups: subgroupAdd inside each subgroup, one partial per subgroup in workgroup
// memory, and every invocation sums the partials in the same order (so all invocations
// agree bit for bit). Subgroup k is taken to hold invocations [k·size, (k+1)·size) of a
// 1-D workgroup, which is how every current Vulkan, D3D12 and Metal driver packs them.
import { defineKernel, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';

export interface WorkgroupReduce {
  /** `enable subgroups;` when needed: put it at the top of the module. */
  enable: string;
  /** Declares `fn reduceSum(v: vec2f, lid: u32, sgSize: u32) -> vec2f`. */
  decl: string;
  /** Extra entry-point parameter (`, @builtin(subgroup_size) sgSize: u32`) or ''. */
  builtin: string;
  /** What to pass as `sgSize` from the entry point. */
  sgArg: string;
}

export function workgroupReduce(wg: number, subgroups: boolean): WorkgroupReduce {
  if (wg & (wg - 1)) throw new Error(`workgroupReduce: workgroup size ${wg} is not a power of two`);
  if (subgroups) {
    return {
      enable: 'enable subgroups;\n',
      builtin: ', @builtin(subgroup_size) sgSize: u32',
      sgArg: 'sgSize',
      decl: /* wgsl */ `
// Subgroups are at least 4 wide, so WG/4 partials at most; a subgroup wider than the
// workgroup (wave64 under a 32-wide workgroup) leaves one partial.
var<workgroup> reducePartials: array<vec2f, ${Math.max(1, wg / 4)}>;
fn reduceSum(v: vec2f, lid: u32, sgSize: u32) -> vec2f {
  let s = subgroupAdd(v);
  // Earlier calls may still be reading the partials.
  workgroupBarrier();
  if (lid % sgSize == 0u) { reducePartials[lid / sgSize] = s; }
  workgroupBarrier();
  var total = vec2f(0.0);
  for (var k = 0u; k < (${wg}u + sgSize - 1u) / sgSize; k++) { total += reducePartials[k]; }
  return total;
}`,
    };
  }
  return {
    enable: '',
    builtin: '',
    sgArg: '0u',
    decl: /* wgsl */ `
var<workgroup> reduceTree: array<vec2f, ${wg}>;
fn reduceSum(v: vec2f, lid: u32, _sgSize: u32) -> vec2f {
  // Earlier calls may still be reading reduceTree[0].
  workgroupBarrier();
  reduceTree[lid] = v;
  workgroupBarrier();
  for (var stride = ${wg / 2}u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { reduceTree[lid] += reduceTree[lid + stride]; }
    workgroupBarrier();
  }
  return reduceTree[0];
}`,
  };
}

/** A reducing norm kernel's reduction, lane type and values per lane, from its flavor. */
export const reducingFlavor = (f: { wg: number; subgroups: boolean; vec4: boolean }) => ({
  r: workgroupReduce(f.wg, f.subgroups),
  lane: f.vec4 ? ('vec4f' as const) : ('f32' as const),
  width: f.vec4 ? 4 : 1,
});

/**
 * Start of a kernel that reduces with `r` over lanes of type `lane`: module helpers and the
 * entry point (opening brace included), with the subgroup-size parameter when `r` uses it.
 */
export const reducingEntry = (
  lane: 'f32' | 'vec4f',
  wg: number,
  r: WorkgroupReduce,
): string => /* wgsl */ `${WGSL_FLAT_INDEX}
${laneHelpers(lane)}
${r.decl}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32${r.builtin}) {`;

/**
 * Mean `mu` and reciprocal standard deviation `rs` of x[base … base+n−1] (n lanes, `count`
 * values, p.eps added to the variance), by the corrected two-pass algorithm: Σx → μ₀, then
 * Σ(x − μ₀) and Σ(x − μ₀)², the first term repairing μ₀'s rounding. Every invocation of the
 * workgroup gets the same values.
 */
export const meanAndRstd = (
  lane: 'f32' | 'vec4f',
  wg: number,
  r: WorkgroupReduce,
): string => /* wgsl */ `  var s = ${lane}(0.0);
  for (var i = lid; i < n; i += ${wg}u) { s += x[base + i]; }
  let mu0 = reduceSum(vec2f(hsum(s), 0.0), lid, ${r.sgArg}).x / count;
  var d = vec2f(0.0);
  for (var i = lid; i < n; i += ${wg}u) {
    let t = x[base + i] - mu0;
    d += vec2f(hsum(t), hsum(t * t));
  }
  let m = reduceSum(d, lid, ${r.sgArg}) / count;
  let mu = mu0 + m.x;
  let rs = inverseSqrt(max(m.y - m.x * m.x, 0.0) + p.eps);`;

/**
 * Workgroup size for a workgroup that reduces `lanes` values (scalars or vec4s) by
 * itself: about four per invocation, between 64 and 256. Rows of 320–1280 values get 64
 * or 128 invocations instead of 256 mostly idle ones; that matters most where idle
 * invocations still cost time at every barrier (software Vulkan drivers such as lavapipe, and GPUs keeping
 * fewer workgroups resident).
 */
export function reduceWorkgroupSize(lanes: number): number {
  const want = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(lanes / 4))));
  return Math.min(256, Math.max(64, want));
}

/** Workgroup sizes reduceWorkgroupSize() can return (for compile lists). */
export const REDUCE_WORKGROUP_SIZES = [64, 128, 256] as const;

/** WGSL helpers over a lane type (f32 or vec4f): horizontal sum and SiLU. */
export function laneHelpers(lane: 'f32' | 'vec4f'): string {
  const hsum = lane === 'f32' ? 'return v;' : 'return dot(v, vec4f(1.0));';
  return /* wgsl */ `
fn hsum(v: ${lane}) -> f32 { ${hsum} }
// v·σ(v) as v / (1 + e^-v): for v < -88 the exponential is inf and the result is -0.
fn silu(v: ${lane}) -> ${lane} { return v / (1.0 + exp(-v)); }
fn siluGrad(v: ${lane}) -> ${lane} {
  let s = 1.0 / (1.0 + exp(-v));
  return s * (1.0 + v * (1.0 - s));
}`;
}

// partial: (R, C) of (Σg·x̂, Σg) → dW, dB: (C). The last step of both norms' parameter
// gradients: one invocation per channel sums its R partial pairs in order.
export const PARAM_SUM_WG = 256;
export const paramSumKernel = defineKernel({
  name: 'norm_backward_param_sum',
  storage: ['read', 'write', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { cols: u32, rows: u32 }
@group(0) @binding(0) var<storage, read> partial: array<vec2f>;
@group(0) @binding(1) var<storage, read_write> dW: array<f32>;
@group(0) @binding(2) var<storage, read_write> dB: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${PARAM_SUM_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let c = flatIndex(wid, nwg, lid, ${PARAM_SUM_WG}u);
  if (c >= p.cols) { return; }
  var acc = vec2f(0.0);
  for (var r = 0u; r < p.rows; r++) { acc += partial[r * p.cols + c]; }
  dW[c] = acc.x;
  dB[c] = acc.y;
}`,
});
