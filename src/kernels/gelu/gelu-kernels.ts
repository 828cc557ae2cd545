// WGSL forward and backward of GELU, and their dispatch (no autograd here: see gelu.ts).
// Each pass has a scalar kernel (one element per invocation: the GPU-side second reference)
// and a vec4 kernel (the default).
// WGSL has no erf, so Φ comes from a float32 erfc with small *relative* error: on the
// negative side GELU is x·(a tiny Φ), and an erf accurate only in absolute terms
// (1.5e-7) would be wrong by tens of percent there.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

/** PyTorch's `approximate` argument: 'none' is the exact erf form. */
export type GeluApproximate = 'none' | 'tanh';

// The GELU functions are written once over a type T (f32, or vec4f for the vec4 kernels,
// whose copies carry the suffix "4"); WGSL has no generics.
// erfc(z), z ≥ 0, as t·exp(−z² + P(t)), t = 1/(1 + z/2): the Chebyshev fit of Numerical
// Recipes (§6.2, "erfcc"), fractional error < 1.2e-7 for every z ≥ 0.
const EXACT = (T: string, s: string) => /* wgsl */ `
fn erfcNonNegative${s}(z: ${T}) -> ${T} {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
}
// Φ(x) = ½·erfc(−x/√2), taking the small tail from erfc on either side.
fn normalCdf${s}(x: ${T}) -> ${T} {
  let tail = 0.5 * erfcNonNegative${s}(abs(x) * 0.70710678118654752);
  return select(1.0 - tail, tail, x < ${T}(0.0));
}
fn gelu${s}(x: ${T}) -> ${T} { return x * normalCdf${s}(x); }
fn geluGrad${s}(x: ${T}) -> ${T} {
  return normalCdf${s}(x) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}`;

// ½(1 + tanh(u)) = σ(2u) and ½(1 − tanh²(u)) = 2σ(1 − σ): the same functions without
// the cancellation of 1 + tanh(u) → 0 for x ≪ 0, and without tanh's inf/inf for large |u|.
// σ(1 − σ) is taken as q·σ², q = e^(−2u), where 1 − σ would cancel (u > 0).
const TANH = (T: string, s: string) => /* wgsl */ `
fn geluU${s}(x: ${T}) -> ${T} { return 0.79788456080286536 * (x + 0.044715 * x * x * x); }
fn gelu${s}(x: ${T}) -> ${T} { return x / (1.0 + exp(-2.0 * geluU${s}(x))); }
fn geluGrad${s}(x: ${T}) -> ${T} {
  let u = geluU${s}(x);
  let q = exp(-2.0 * u);
  let s = 1.0 / (1.0 + q);
  let ds = select(s * (1.0 - s), q * s * s, u > ${T}(0.0));
  return s + 2.0 * x * ds * 0.79788456080286536 * (1.0 + 0.134145 * x * x);
}`;

/**
 * WGSL defining `gelu(x: f32) -> f32` and `geluGrad(x: f32) -> f32` (also used by GEGLU);
 * with `vec4`, `gelu4` and `geluGrad4` over vec4f instead.
 */
export const geluWgsl = (approximate: GeluApproximate, vec4 = false): string =>
  (approximate === 'tanh' ? TANH : EXACT)(vec4 ? 'vec4f' : 'f32', vec4 ? '4' : '');

export type GeluImpl = 'vec4' | 'scalar';

const VEC_WG = 256;
const VEC_PER = 4;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

// Each invocation handles VEC_PER vec4s `i`, VEC_WG apart so that neighbouring invocations
// touch neighbouring memory (measured on llvmpipe: ≈ 3–4× faster than one element per
// invocation). The last vec4 may run past n: computed from whatever follows the tensor in
// its buffer, its lanes ≥ n are stored as 0 (pool buffers are whole multiples of 256 bytes;
// dispatch checks that every buffer fits).
const VEC_LOOP = (body: string) => /* wgsl */ `
fn keep(i: u32, v: vec4f) -> vec4f {
  return select(vec4f(), v, vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.n));
}
@compute @workgroup_size(${VEC_WG})
${ENTRY} {
  let first = flatWorkgroup(wid, nwg) * ${VEC_WG * VEC_PER}u + lid;
  for (var k = 0u; k < ${VEC_PER}u; k++) {
    let i = first + k * ${VEC_WG}u;
    if (i >= (p.n + 3u) / 4u) { return; }
${body}
  }
}`;

// x: (⌈n/4⌉ vec4) → y: (⌈n/4⌉ vec4)
const forwardVec4Kernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `gelu_forward_${approximate}_vec4`,
    storage: ['read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate, true)}
${VEC_LOOP('    y[i] = keep(i, gelu4(x[i]));')}`,
  });

// x, dY: (⌈n/4⌉ vec4) → dX: (⌈n/4⌉ vec4)
const backwardVec4Kernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `gelu_backward_${approximate}_vec4`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> dY: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dX: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate, true)}
${VEC_LOOP('    dX[i] = keep(i, dY[i] * geluGrad4(x[i]));')}`,
  });

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
const forwardVec4Kernels = { none: forwardVec4Kernel('none'), tanh: forwardVec4Kernel('tanh') };
const backwardVec4Kernels = { none: backwardVec4Kernel('none'), tanh: backwardVec4Kernel('tanh') };

// Whether every buffer holds ⌈n/4⌉ whole vec4s (pool buffers always do).
const vec4Fits = (n: number, ts: Tensor[]) => ts.every((t) => t.buffer.size >= Math.ceil(n / 4) * 16);

function dispatch(engine: Engine, impl: GeluImpl, vec: KernelDef, scalar: KernelDef, buffers: Tensor[], n: number) {
  if (impl === 'vec4' && vec4Fits(n, buffers)) {
    engine.dispatch(vec, buffers, grid1d(Math.ceil(n / 4), VEC_WG * VEC_PER), [u32(n)]);
  } else {
    engine.dispatch(scalar, buffers, grid1d(n, ELEMENTWISE_WG), [u32(n)]);
  }
}

// x: (any) → y: same shape
export function geluForward(
  engine: Engine,
  x: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GeluImpl = 'vec4',
): Tensor {
  const y = engine.empty(x.shape);
  dispatch(engine, impl, forwardVec4Kernels[approximate], forwardKernels[approximate], [x, y], x.size);
  return y;
}

// x, dY: (any) → dX: same shape
export function geluBackward(
  engine: Engine,
  x: Tensor,
  dY: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GeluImpl = 'vec4',
): Tensor {
  const dX = engine.empty(x.shape);
  dispatch(engine, impl, backwardVec4Kernels[approximate], backwardKernels[approximate], [x, dY, dX], x.size);
  return dX;
}

export const geluKernels: KernelDef[] = [
  ...Object.values(forwardKernels),
  ...Object.values(backwardKernels),
  ...Object.values(forwardVec4Kernels),
  ...Object.values(backwardVec4Kernels),
];
