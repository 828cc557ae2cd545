// WGSL forward and backward of GEGLU, and their dispatch (no autograd here: see geglu.ts).
// Each output element reads its hidden/gate pair, so the (…, 2F) input is never split into
// two tensors. Two implementations: scalar (one output element per invocation — the
// GPU-side second reference) and, where F is a multiple of 4 (every transformer width),
// vec4: VEC_PER vec4s of outputs per invocation, ≈ 3–4× faster on llvmpipe, which pays per
// invocation and per load instruction.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import { forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { geluWgsl, type GeluApproximate } from '../gelu/gelu-kernels.ts';
import { checkActivation, checkF32, VEC_PER, VEC_WG, type UnaryImpl } from '../unary/unary-kernels.ts';
import { elementwiseMain, WGSL_ELEMENTWISE_ENTRY as ENTRY } from '../elementwise-main.ts';

export type GegluImpl = UnaryImpl;

// Loop over this invocation's output vec4s `i` (n/4 of them), VEC_WG apart so that
// neighbouring invocations touch neighbouring memory; `h` is the vec4 index of its hidden
// values and `h + f4` of its gates (F a multiple of 4: a vec4 never straddles two rows).
const VEC_LOOP = (body: string) => /* wgsl */ `
@compute @workgroup_size(${VEC_WG})
${ENTRY} {
  let first = flatWorkgroup(wid, nwg) * ${VEC_WG * VEC_PER}u + lid;
  let f4 = p.f / 4u;
  for (var k = 0u; k < ${VEC_PER}u; k++) {
    let i = first + k * ${VEC_WG}u;
    if (i >= p.n / 4u) { return; }
    let h = (i / f4) * 2u * f4 + i % f4;
${body}
  }
}`;

// What every GEGLU kernel declares: params, storage `names` as arrays of f32 or vec4f (the
// last one written), then the GELU helpers (gelu4/geluGrad4 for vec4).
const gegluModule = (approximate: GeluApproximate, vec4: boolean, names: string[]) => /* wgsl */ `
struct Params { n: u32, f: u32 }
${names
  .map(
    (n, i) =>
      `@group(0) @binding(${i}) var<storage, ${i === names.length - 1 ? 'read_write' : 'read'}> ${n}: array<${vec4 ? 'vec4f' : 'f32'}>;`,
  )
  .join('\n')}
@group(0) @binding(${names.length}) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${geluWgsl(approximate, vec4)}`;

// Scalar kernels: output element i, its hidden value at `hidden` and gate at hidden + F.
const SCALAR_MAIN = /* wgsl */ `${elementwiseMain()}
  if (i >= p.n) { return; }
  let hidden = (i / p.f) * 2u * p.f + i % p.f;`;

// x: (rows, 2F) → y: (rows, F), F a multiple of 4
const forwardVec4Kernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_forward_${approximate}_vec4`,
    storage: ['read', 'write'],
    uniforms: true,
    code: /* wgsl */ `${gegluModule(approximate, true, ['x', 'y'])}
${VEC_LOOP('    y[i] = x[h] * gelu4(x[h + f4]);')}`,
  });

// x: (rows, 2F), dY: (rows, F) → dX: (rows, 2F), F a multiple of 4
const backwardVec4Kernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_backward_${approximate}_vec4`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `${gegluModule(approximate, true, ['x', 'dY', 'dX'])}
${VEC_LOOP(`    let gate = x[h + f4];
    let g = dY[i];
    dX[h] = g * gelu4(gate);
    dX[h + f4] = g * x[h] * geluGrad4(gate);`)}`,
  });

// x: (rows, 2F) → y: (rows, F)
const forwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_forward_${approximate}`,
    storage: ['read', 'write'],
    uniforms: true,
    code: /* wgsl */ `${gegluModule(approximate, false, ['x', 'y'])}
${SCALAR_MAIN}
  y[i] = x[hidden] * gelu(x[hidden + p.f]);
}`,
  });

// x: (rows, 2F), dY: (rows, F) → dX: (rows, 2F)
const backwardKernel = (approximate: GeluApproximate) =>
  defineKernel({
    name: `geglu_backward_${approximate}`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `${gegluModule(approximate, false, ['x', 'dY', 'dX'])}
${SCALAR_MAIN}
  let gate = x[hidden + p.f];
  dX[hidden] = dY[i] * gelu(gate);
  dX[hidden + p.f] = dY[i] * x[hidden] * geluGrad(gate);
}`,
  });

const forwardKernels = { none: forwardKernel('none'), tanh: forwardKernel('tanh') };
const backwardKernels = { none: backwardKernel('none'), tanh: backwardKernel('tanh') };
const forwardVec4Kernels = { none: forwardVec4Kernel('none'), tanh: forwardVec4Kernel('tanh') };
const backwardVec4Kernels = { none: backwardVec4Kernel('none'), tanh: backwardVec4Kernel('tanh') };

function halfWidth(x: Tensor): number {
  const last = x.shape[x.rank - 1];
  if (x.rank === 0 || last % 2 !== 0) throw new Error(`geglu: last dimension must be even (2F), got ${x}`);
  return last / 2;
}

// Over n output elements: vec4 where F allows, else scalar.
function dispatch(
  engine: Engine,
  impl: GegluImpl,
  vec: KernelDef,
  scalar: KernelDef,
  buffers: Tensor[],
  n: number,
  f: number,
) {
  // Rows of (2F | F) under the binding limit.
  forEachRowRange(engine, `${scalar.name} (${buffers[0]})`, n / f, buffers, (views, rows) => {
    const m = rows * f;
    if (impl === 'vec4' && f % 4 === 0) {
      engine.dispatch(vec, views, grid1d(m / 4, VEC_WG * VEC_PER), [u32(m), u32(f)]);
    } else {
      engine.dispatch(scalar, views, grid1d(m, ELEMENTWISE_WG), [u32(m), u32(f)]);
    }
  });
}

// x: (…, 2F) → y: (…, F)
export function gegluForward(
  engine: Engine,
  x: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GegluImpl = 'vec4',
): Tensor {
  checkActivation('geglu', engine, x);
  const f = halfWidth(x);
  // y in x's dtype: fp16 activations (inference) stay fp16, stored through half-storage.
  const y = engine.empty([...x.shape.slice(0, -1), f], x.dtype);
  dispatch(engine, impl, forwardVec4Kernels[approximate], forwardKernels[approximate], [x, y], y.size, f);
  return y;
}

// x: (…, 2F), dY: (…, F) → dX: (…, 2F)
export function gegluBackward(
  engine: Engine,
  x: Tensor,
  dY: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GegluImpl = 'vec4',
): Tensor {
  checkF32('geglu backward', x, dY);
  const f = halfWidth(x);
  const dX = engine.empty(x.shape);
  dispatch(engine, impl, backwardVec4Kernels[approximate], backwardKernels[approximate], [x, dY, dX], dY.size, f);
  return dX;
}

export const gegluKernels: KernelDef[] = [
  ...Object.values(forwardKernels),
  ...Object.values(backwardKernels),
  ...Object.values(forwardVec4Kernels),
  ...Object.values(backwardVec4Kernels),
];
