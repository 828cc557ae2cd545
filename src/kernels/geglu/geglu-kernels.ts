// WGSL forward and backward of GEGLU, and their dispatch (no autograd here: see geglu.ts).
// One invocation per output element reads its hidden/gate pair, so the (…, 2F) input is
// never split into two tensors.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { geluWgsl, type GeluApproximate } from '../gelu/gelu-kernels.ts';

// x: (rows, 2F) → y: (rows, F)
const forwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_forward_${approximate}`,
    storage: ['read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32, f: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate)}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i >= p.n) { return; }
  let hidden = (i / p.f) * 2u * p.f + i % p.f;
  y[i] = x[hidden] * gelu(x[hidden + p.f]);
}`,
  });

// x: (rows, 2F), dY: (rows, F) → dX: (rows, 2F)
const backwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_backward_${approximate}`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { n: u32, f: u32 }
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
  if (i >= p.n) { return; }
  let hidden = (i / p.f) * 2u * p.f + i % p.f;
  let gate = x[hidden + p.f];
  dX[hidden] = dY[i] * gelu(gate);
  dX[hidden + p.f] = dY[i] * x[hidden] * geluGrad(gate);
}`,
  });

const forwardKernels = { none: forwardKernel('none'), tanh: forwardKernel('tanh') };
const backwardKernels = { none: backwardKernel('none'), tanh: backwardKernel('tanh') };

function halfWidth(x: Tensor): number {
  const last = x.shape[x.rank - 1];
  if (x.rank === 0 || last % 2 !== 0) throw new Error(`geglu: last dimension must be even (2F), got ${x}`);
  return last / 2;
}

// x: (…, 2F) → y: (…, F)
export function gegluForward(engine: Engine, x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  const f = halfWidth(x);
  const y = engine.empty([...x.shape.slice(0, -1), f]);
  engine.dispatch(forwardKernels[approximate], [x, y], grid1d(y.size, ELEMENTWISE_WG), [u32(y.size), u32(f)]);
  return y;
}

// x: (…, 2F), dY: (…, F) → dX: (…, 2F)
export function gegluBackward(engine: Engine, x: Tensor, dY: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  const f = halfWidth(x);
  const dX = engine.empty(x.shape);
  engine.dispatch(backwardKernels[approximate], [x, dY, dX], grid1d(dY.size, ELEMENTWISE_WG), [u32(dY.size), u32(f)]);
  return dX;
}

export const gegluKernels: KernelDef[] = [...Object.values(forwardKernels), ...Object.values(backwardKernels)];
