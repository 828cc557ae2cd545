// WGSL forward and backward of SiLU, and their dispatch (no autograd here: see silu.ts).
// Two implementations of each pass:
//  - scalar: one element per invocation — the GPU-side second reference;
//  - vec4 (default): each invocation handles VEC_PER vec4s, VEC_WG apart so that
//    neighbouring invocations touch neighbouring memory. Measured on llvmpipe (1.3 M
//    elements): ≈ 3–4× faster than scalar — a CPU adapter pays per invocation and per
//    load instruction, and a vec4 load is one of each for four elements.
//    The last vec4 may run past n: it is computed (from whatever follows the tensor in its
//    buffer) and its lanes ≥ n are stored as 0. That is safe because pool buffers are whole
//    multiples of 256 bytes; dispatch checks it and falls back to scalar otherwise.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

export type SiluImpl = 'vec4' | 'scalar';

const VEC_WG = 256;
const VEC_PER = 4;

// exp(-x) overflows to inf for x < -88, giving σ = 0 and y = -0: the right limit.
const SIGMOID = /* wgsl */ `
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn sigmoid4(x: vec4f) -> vec4f { return 1.0 / (1.0 + exp(-x)); }`;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

// Loop over this invocation's vec4s `i` (n4 = ⌈n/4⌉ of them); `keep(i, v)` zeroes lanes ≥ n.
const VEC_LOOP = (body: string) => /* wgsl */ `
fn keep(i: u32, v: vec4f) -> vec4f {
  return select(vec4f(), v, vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.n));
}
@compute @workgroup_size(${VEC_WG})
${ENTRY} {
  let first = flatWorkgroup(wid, nwg) * ${VEC_WG * VEC_PER}u + lid;
  for (var k = 0u; k < ${VEC_PER}u; k++) {
    let i = first + k * ${VEC_WG}u;
    if (i >= p.n4) { return; }
${body}
  }
}`;

// x: (n) → y: (n)
const forwardKernel = defineKernel({
  name: 'silu_forward',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${SIGMOID}
@compute @workgroup_size(${ELEMENTWISE_WG})
${ENTRY} {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = x[i] * sigmoid(x[i]); }
}`,
});

// x, dY: (n) → dX: (n)
const backwardKernel = defineKernel({
  name: 'silu_backward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read_write> dX: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${SIGMOID}
@compute @workgroup_size(${ELEMENTWISE_WG})
${ENTRY} {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) {
    let s = sigmoid(x[i]);
    dX[i] = dY[i] * s * (1.0 + x[i] * (1.0 - s));
  }
}`,
});

// x: (⌈n/4⌉ vec4) → y: (⌈n/4⌉ vec4)
const forwardVec4Kernel = defineKernel({
  name: 'silu_forward_vec4',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, n4: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${SIGMOID}
${VEC_LOOP(`    let v = x[i];
    y[i] = keep(i, v * sigmoid4(v));`)}`,
});

// x, dY: (⌈n/4⌉ vec4) → dX: (⌈n/4⌉ vec4)
const backwardVec4Kernel = defineKernel({
  name: 'silu_backward_vec4',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, n4: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> dY: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dX: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${SIGMOID}
${VEC_LOOP(`    let v = x[i];
    let s = sigmoid4(v);
    dX[i] = keep(i, dY[i] * s * (1.0 + v * (1.0 - s)));`)}`,
});

// Whether every buffer holds ⌈n/4⌉ whole vec4s (pool buffers always do).
const vec4Fits = (n: number, ts: Tensor[]) => ts.every((t) => t.buffer.size >= Math.ceil(n / 4) * 16);

function dispatch(engine: Engine, impl: SiluImpl, vec: KernelDef, scalar: KernelDef, buffers: Tensor[], n: number) {
  if (impl === 'vec4' && vec4Fits(n, buffers)) {
    const n4 = Math.ceil(n / 4);
    engine.dispatch(vec, buffers, grid1d(n4, VEC_WG * VEC_PER), [u32(n), u32(n4)]);
  } else {
    engine.dispatch(scalar, buffers, grid1d(n, ELEMENTWISE_WG), [u32(n)]);
  }
}

// x: (any) → y: same shape
export function siluForward(engine: Engine, x: Tensor, impl: SiluImpl = 'vec4'): Tensor {
  const y = engine.empty(x.shape);
  dispatch(engine, impl, forwardVec4Kernel, forwardKernel, [x, y], x.size);
  return y;
}

// x, dY: (any) → dX: same shape
export function siluBackward(engine: Engine, x: Tensor, dY: Tensor, impl: SiluImpl = 'vec4'): Tensor {
  const dX = engine.empty(x.shape);
  dispatch(engine, impl, backwardVec4Kernel, backwardKernel, [x, dY, dX], x.size);
  return dX;
}

export const siluKernels = [forwardKernel, backwardKernel, forwardVec4Kernel, backwardVec4Kernel];
