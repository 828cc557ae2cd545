// WGSL forward and backward of quick GELU, x·σ(1.702x) (CLIP's activation), and their
// dispatch (no autograd here: see quick-gelu.ts).
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

// exp overflows to inf for very negative x, giving σ = 0 and y = −0: the right limit.
const GATE = /* wgsl */ `fn gate(x: f32) -> f32 { return 1.0 / (1.0 + exp(-1.702 * x)); }`;

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

// x: (any) → y: same shape
export function quickGeluForward(engine: Engine, x: Tensor): Tensor {
  const y = engine.empty(x.shape);
  engine.dispatch(forwardKernel, [x, y], grid1d(x.size, ELEMENTWISE_WG), [u32(x.size)]);
  return y;
}

// x, dY: (any) → dX: same shape
export function quickGeluBackward(engine: Engine, x: Tensor, dY: Tensor): Tensor {
  const dX = engine.empty(x.shape);
  engine.dispatch(backwardKernel, [x, dY, dX], grid1d(x.size, ELEMENTWISE_WG), [u32(x.size)]);
  return dX;
}

export const quickGeluKernels = [forwardKernel, backwardKernel];
