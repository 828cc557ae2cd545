// WGSL forward and backward of quick GELU, x·σ(1.702x) (CLIP's activation), and their
// dispatch (no autograd here: see quick-gelu.ts). Each pass has a scalar kernel (one element
// per invocation: the GPU-side second reference) and a vec4 kernel (the default).
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

// exp overflows to inf for very negative x, giving σ = 0 and y = −0: the right limit.
const GATE = /* wgsl */ `
fn gate(x: f32) -> f32 { return 1.0 / (1.0 + exp(-1.702 * x)); }
fn gate4(x: vec4f) -> vec4f { return 1.0 / (1.0 + exp(-1.702 * x)); }`;

export type QuickGeluImpl = 'vec4' | 'scalar';

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

const forwardKernel = defineKernel({
  name: 'quick_gelu_forward',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${GATE}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = x[i] * gate(x[i]); }
}`,
});

const backwardKernel = defineKernel({
  name: 'quick_gelu_backward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read_write> dX: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${GATE}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) {
    let s = gate(x[i]);
    dX[i] = dY[i] * s * (1.0 + 1.702 * x[i] * (1.0 - s));
  }
}`,
});

// x: (⌈n/4⌉ vec4) → y: (⌈n/4⌉ vec4)
const forwardVec4Kernel = defineKernel({
  name: 'quick_gelu_forward_vec4',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${GATE}
${VEC_LOOP(`    let v = x[i];
    y[i] = keep(i, v * gate4(v));`)}`,
});

// x, dY: (⌈n/4⌉ vec4) → dX: (⌈n/4⌉ vec4)
const backwardVec4Kernel = defineKernel({
  name: 'quick_gelu_backward_vec4',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> dY: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dX: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${GATE}
${VEC_LOOP(`    let v = x[i];
    let s = gate4(v);
    dX[i] = keep(i, dY[i] * s * (1.0 + 1.702 * v * (1.0 - s)));`)}`,
});

// Whether every buffer holds ⌈n/4⌉ whole vec4s (pool buffers always do).
const vec4Fits = (n: number, ts: Tensor[]) => ts.every((t) => t.buffer.size >= Math.ceil(n / 4) * 16);

function dispatch(
  engine: Engine,
  impl: QuickGeluImpl,
  vec: KernelDef,
  scalar: KernelDef,
  buffers: Tensor[],
  n: number,
) {
  if (impl === 'vec4' && vec4Fits(n, buffers)) {
    engine.dispatch(vec, buffers, grid1d(Math.ceil(n / 4), VEC_WG * VEC_PER), [u32(n)]);
  } else {
    engine.dispatch(scalar, buffers, grid1d(n, ELEMENTWISE_WG), [u32(n)]);
  }
}

// x: (any) → y: same shape
export function quickGeluForward(engine: Engine, x: Tensor, impl: QuickGeluImpl = 'vec4'): Tensor {
  const y = engine.empty(x.shape);
  dispatch(engine, impl, forwardVec4Kernel, forwardKernel, [x, y], x.size);
  return y;
}

// x, dY: (any) → dX: same shape
export function quickGeluBackward(engine: Engine, x: Tensor, dY: Tensor, impl: QuickGeluImpl = 'vec4'): Tensor {
  const dX = engine.empty(x.shape);
  dispatch(engine, impl, backwardVec4Kernel, backwardKernel, [x, dY, dX], x.size);
  return dX;
}

export const quickGeluKernels = [forwardKernel, backwardKernel, forwardVec4Kernel, backwardVec4Kernel];
