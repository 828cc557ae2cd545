// WGSL sinusoidal timestep embedding (forward) and its derivative w.r.t. the timesteps
// (backward), and their dispatch (no autograd here: see timestep-embedding.ts).
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import {
  resolveTimestepOptions,
  timestepFrequencies,
  type ResolvedTimestepOptions,
  type TimestepEmbeddingOptions,
} from './timestep-embedding-reference.ts';
import { elementwiseMain } from '../elementwise-main.ts';

const REDUCE_WG = 64;

// Angles reach ~1000 rad (t ≤ 999, f₀ = 1), and WGSL/Vulkan bound sin/cos errors only on
// [−π, π]; outside, some drivers lose digits. So reduce by 2π first (Cody–Waite: 2π split
// in three fp32 parts, the first with 8 significant bits so k·HI is exact for |k| < 2¹⁶).
const REDUCE_ANGLE = /* wgsl */ `
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_MID: f32 = 1.93530717e-3;
const TWO_PI_LO: f32 = 1.02531317e-11;
const INV_TWO_PI: f32 = 0.159154937;
fn reduceAngle(x: f32) -> f32 {
  let k = round(x * INV_TWO_PI);
  return ((x - k * TWO_PI_HI) - k * TWO_PI_MID) - k * TWO_PI_LO;
}`;

const PARAMS = /* wgsl */ `struct Params { n: u32, dim: u32, half: u32, flip: u32, scale: f32 }`;

const forwardKernel = defineKernel({
  name: 'timestep_embedding_forward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read> freq: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${REDUCE_ANGLE}
${elementwiseMain()}
  if (i >= p.n) { return; }
  let b = i / p.dim;
  let j = i - b * p.dim;
  if (j >= 2u * p.half) { y[i] = 0.0; return; } // odd dim: zero pad column
  let second = j >= p.half;
  let f = select(j, j - p.half, second);
  // (t·f)·scale in this order: the fp32 roundings diffusers does.
  let a = reduceAngle(t[b] * freq[f] * p.scale);
  // Unflipped: [sin | cos]; flipped: [cos | sin].
  y[i] = select(sin(a), cos(a), second != (p.flip != 0u));
}`,
});

// One workgroup per timestep: dT_b = scale·Σ_i f_i·(dY_sin·cos a_i − dY_cos·sin a_i).
const backwardKernel = defineKernel({
  name: 'timestep_embedding_backward',
  storage: ['read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read> freq: array<f32>;
@group(0) @binding(2) var<storage, read> dY: array<f32>;
@group(0) @binding(3) var<storage, read_write> dT: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${REDUCE_ANGLE}
var<workgroup> partial: array<f32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let b = flatWorkgroup(wid, nwg);
  if (b >= p.n) { return; } // uniform per workgroup, so the barriers below stay uniform
  let row = b * p.dim;
  let flip = p.flip != 0u;
  var acc = 0.0;
  for (var i = lid; i < p.half; i += ${REDUCE_WG}u) {
    let f = freq[i];
    let a = reduceAngle(t[b] * f * p.scale);
    let dFirst = dY[row + i];
    let dSecond = dY[row + p.half + i];
    let dSin = select(dFirst, dSecond, flip);
    let dCos = select(dSecond, dFirst, flip);
    acc += f * (dSin * cos(a) - dCos * sin(a));
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dT[b] = partial[0] * p.scale; }
}`,
});

function checkTimesteps(t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${t}`);
  if (t.rank !== 1) throw new Error(`${what}: timesteps must be (B), got [${t.shape.join(',')}]`);
}

function frequencyTensor(engine: Engine, dim: number, o: ResolvedTimestepOptions): Tensor {
  const f = timestepFrequencies(dim, o);
  // A 1-element dummy when dim < 2: bindings cannot be empty.
  return engine.tensor(f.length ? f : [0], [Math.max(1, f.length)]);
}

const params = (n: number, dim: number, o: ResolvedTimestepOptions) => [
  u32(n),
  u32(dim),
  u32(Math.floor(dim / 2)),
  u32(o.flipSinToCos ? 1 : 0),
  f32(o.scale),
];

// t: (B) → y: (B, dim)
export function timestepEmbeddingForward(
  engine: Engine,
  t: Tensor,
  dim: number,
  opts?: TimestepEmbeddingOptions,
): Tensor {
  checkTimesteps(t, 'timestep embedding');
  const o = resolveTimestepOptions(dim, opts);
  const y = engine.empty([t.shape[0], dim]);
  const freq = frequencyTensor(engine, dim, o);
  engine.dispatch(forwardKernel, [t, freq, y], grid1d(y.size, ELEMENTWISE_WG), params(y.size, dim, o));
  freq.dispose();
  return y;
}

// t: (B), dY: (B, dim) → dT: (B)
export function timestepEmbeddingBackward(
  engine: Engine,
  t: Tensor,
  dY: Tensor,
  dim: number,
  opts?: TimestepEmbeddingOptions,
): Tensor {
  checkTimesteps(t, 'timestep embedding backward');
  if (dY.size !== t.size * dim) throw new Error(`timestep embedding backward: ${dY} for ${t} and dim ${dim}`);
  const o = resolveTimestepOptions(dim, opts);
  const dT = engine.empty([t.shape[0]]);
  const freq = frequencyTensor(engine, dim, o);
  engine.dispatch(backwardKernel, [t, freq, dY, dT], grid(t.size), params(t.size, dim, o));
  freq.dispose();
  return dT;
}

export const timestepEmbeddingKernels = [forwardKernel, backwardKernel];
