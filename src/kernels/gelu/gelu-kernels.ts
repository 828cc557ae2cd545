// WGSL forward and backward of GELU, and their dispatch (no autograd here: see gelu.ts).
// WGSL has no erf, so Φ comes from a float32 erfc with small *relative* error: on the
// negative side GELU is x·(a tiny Φ), and an erf accurate only in absolute terms
// (1.5e-7) would be wrong by tens of percent there.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

/** PyTorch's `approximate` argument: 'none' is the exact erf form. */
export type GeluApproximate = 'none' | 'tanh';

// erfc(z), z ≥ 0, as t·exp(−z² + P(t)), t = 1/(1 + z/2): the Chebyshev fit of Numerical
// Recipes (§6.2, "erfcc"), fractional error < 1.2e-7 for every z ≥ 0.
const EXACT = /* wgsl */ `
fn erfcNonNegative(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
}
// Φ(x) = ½·erfc(−x/√2), taking the small tail from erfc on either side.
fn normalCdf(x: f32) -> f32 {
  let tail = 0.5 * erfcNonNegative(abs(x) * 0.70710678118654752);
  return select(1.0 - tail, tail, x < 0.0);
}
fn gelu(x: f32) -> f32 { return x * normalCdf(x); }
fn geluGrad(x: f32) -> f32 {
  return normalCdf(x) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}`;

// ½(1 + tanh(u)) = σ(2u) and ½(1 − tanh²(u)) = 2σ(1 − σ): the same functions without
// the cancellation of 1 + tanh(u) → 0 for x ≪ 0, and without tanh's inf/inf for large |u|.
// σ(1 − σ) is taken as q·σ², q = e^(−2u), where 1 − σ would cancel (u > 0).
const TANH = /* wgsl */ `
fn geluU(x: f32) -> f32 { return 0.79788456080286536 * (x + 0.044715 * x * x * x); }
fn gelu(x: f32) -> f32 { return x / (1.0 + exp(-2.0 * geluU(x))); }
fn geluGrad(x: f32) -> f32 {
  let u = geluU(x);
  let q = exp(-2.0 * u);
  let s = 1.0 / (1.0 + q);
  let ds = select(s * (1.0 - s), q * s * s, u > 0.0);
  return s + 2.0 * x * ds * 0.79788456080286536 * (1.0 + 0.134145 * x * x);
}`;

/** WGSL defining `gelu(x: f32) -> f32` and `geluGrad(x: f32) -> f32` (also used by GEGLU). */
export const geluWgsl = (approximate: GeluApproximate): string => (approximate === 'tanh' ? TANH : EXACT);

const forwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `gelu_forward_${approximate}`,
    storage: ['read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate)}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = gelu(x[i]); }
}`,
  });

const backwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `gelu_backward_${approximate}`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read_write> dX: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate)}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { dX[i] = dY[i] * geluGrad(x[i]); }
}`,
  });

const forwardKernels = { none: forwardKernel('none'), tanh: forwardKernel('tanh') };
const backwardKernels = { none: backwardKernel('none'), tanh: backwardKernel('tanh') };

// x: (any) → y: same shape
export function geluForward(engine: Engine, x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  const y = engine.empty(x.shape);
  engine.dispatch(forwardKernels[approximate], [x, y], grid1d(x.size, ELEMENTWISE_WG), [u32(x.size)]);
  return y;
}

// x, dY: (any) → dX: same shape
export function geluBackward(engine: Engine, x: Tensor, dY: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  const dX = engine.empty(x.shape);
  engine.dispatch(backwardKernels[approximate], [x, dY, dX], grid1d(x.size, ELEMENTWISE_WG), [u32(x.size)]);
  return dX;
}

export const geluKernels: KernelDef[] = [...Object.values(forwardKernels), ...Object.values(backwardKernels)];
