// Generator for element-wise activations y = f(x) (SiLU, quick GELU, GELU): the WGSL
// forward and backward KernelDefs and their dispatch, from the activation's WGSL helpers
// and its forward / backward expressions. No autograd here: see each op's <op>.ts.
// Two implementations of each pass:
//  - scalar: one element per invocation — the GPU-side second reference;
//  - vec4 (default): each invocation handles VEC_PER vec4s, VEC_WG apart so that
//    neighbouring invocations touch neighbouring memory. Measured on llvmpipe (1.3 M
//    elements): ≈ 3–4× faster than scalar — a CPU adapter pays per invocation and per
//    load instruction, and a vec4 load is one of each for four elements.
//    The last vec4 may run past n: it is computed (from whatever follows the tensor in its
//    buffer) and its lanes ≥ n are stored as 0. That is safe because pool buffers are whole
//    multiples of 256 bytes; dispatch checks it and falls back to scalar otherwise.
// The forward takes fp16 activations (inference, see activationDtype): the same kernels
// with x and y stored as f16 (half-storage), y in x's dtype. The backward is f32 only.
import { bytesPerElement } from '../../engine/dtype.ts';
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import { forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { elementwiseMain, WGSL_ELEMENTWISE_ENTRY } from '../elementwise-main.ts';

export type UnaryImpl = 'vec4' | 'scalar';

/** Workgroup size and vec4s per invocation of the vec4 kernels (also used by GEGLU). */
export const VEC_WG = 256;
export const VEC_PER = 4;

// Loop over this invocation's vec4s `i` (n4 = ⌈n/4⌉ of them); `keep(i, v)` zeroes lanes ≥ n.
const VEC_LOOP = (body: string) => /* wgsl */ `
fn keep(i: u32, v: vec4f) -> vec4f {
  return select(vec4f(), v, vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.n));
}
@compute @workgroup_size(${VEC_WG})
${WGSL_ELEMENTWISE_ENTRY} {
  let first = flatWorkgroup(wid, nwg) * ${VEC_WG * VEC_PER}u + lid;
  for (var k = 0u; k < ${VEC_PER}u; k++) {
    let i = first + k * ${VEC_WG}u;
    if (i >= p.n4) { return; }
${body}
  }
}`;

const SCALAR_BODY = (body: string) => /* wgsl */ `
${elementwiseMain()}
  if (i < p.n) {
${body}
  }
}`;

export interface UnaryActivation {
  /** Kernel names are `${name}_${pass}[_${variant}][_vec4]`, e.g. `gelu_forward_tanh_vec4`. */
  name: string;
  variant?: string;
  /**
   * WGSL helper functions over f32, or over vec4f when `vec4` (by convention the vec4
   * copies carry the suffix "4"; WGSL has no generics).
   */
  wgslHelpers: (vec4: boolean) => string;
  /** WGSL expression of f(x); `s` is the helpers' suffix ('' or '4'), `x` a plain name. */
  forward: (x: string, s: string) => string;
  /** WGSL expression of dY·f'(x), same conventions. */
  backward: (x: string, dY: string, s: string) => string;
}

export interface UnaryActivationKernels {
  forwardKernel: KernelDef;
  backwardKernel: KernelDef;
  forwardVec4Kernel: KernelDef;
  backwardVec4Kernel: KernelDef;
  /** The four above, in that order. */
  kernels: KernelDef[];
  // x: (any) → y: same shape
  forward: (engine: Engine, x: Tensor, impl?: UnaryImpl) => Tensor;
  // x, dY: (any) → dX: same shape
  backward: (engine: Engine, x: Tensor, dY: Tensor, impl?: UnaryImpl) => Tensor;
}

// Whether every buffer holds ⌈n/4⌉ whole vec4s of its dtype (pool buffers always do).
const vec4Fits = (n: number, ts: Tensor[]) =>
  ts.every((t) => t.bytesAvailable >= Math.ceil(n / 4) * 4 * bytesPerElement(t.dtype));

/** Kernel-level guard for fp16 activations (ops check more with activationDtype). */
export function checkActivation(what: string, engine: Engine, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== ts[0].dtype) throw new Error(`${what}: activations of mixed dtypes (${ts.map(String).join(', ')})`);
    if (t.dtype === 'f16' && !engine.f16) throw new Error(`${what}: fp16 activations need shader-f16, got ${t}`);
  }
}

/** Kernel-level guard of the backward passes, which are f32 only (training keeps fp32). */
export function checkF32(what: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${t}`);
}

// Element ranges under the binding limit (views start at aligned offsets: whole vec4s).
function dispatch(engine: Engine, impl: UnaryImpl, vec: KernelDef, scalar: KernelDef, buffers: Tensor[], n: number) {
  forEachRowRange(engine, `${scalar.name} (${buffers[0]})`, n, buffers, (views, count) =>
    dispatchRange(engine, impl, vec, scalar, views, count),
  );
}

function dispatchRange(
  engine: Engine,
  impl: UnaryImpl,
  vec: KernelDef,
  scalar: KernelDef,
  buffers: Tensor[],
  n: number,
) {
  if (impl === 'vec4' && vec4Fits(n, buffers)) {
    const n4 = Math.ceil(n / 4);
    engine.dispatch(vec, buffers, grid1d(n4, VEC_WG * VEC_PER), [u32(n), u32(n4)]);
  } else {
    engine.dispatch(scalar, buffers, grid1d(n, ELEMENTWISE_WG), [u32(n)]);
  }
}

export function defineUnaryActivation(act: UnaryActivation): UnaryActivationKernels {
  const kernelName = (pass: string, vec4: boolean) =>
    [act.name, pass, act.variant, vec4 ? 'vec4' : undefined].filter((p) => p !== undefined).join('_');

  // x: (n) → y: (n), or x: (⌈n/4⌉ vec4) → y: (⌈n/4⌉ vec4)
  const forwardDef = (vec4: boolean) => {
    const [E, s] = vec4 ? ['vec4f', '4'] : ['f32', ''];
    return defineKernel({
      name: kernelName('forward', vec4),
      storage: ['read', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { n: u32${vec4 ? ', n4: u32' : ''} }
@group(0) @binding(0) var<storage, read> x: array<${E}>;
@group(0) @binding(1) var<storage, read_write> y: array<${E}>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${act.wgslHelpers(vec4)}
${
  vec4
    ? VEC_LOOP(`    let v = x[i];
    y[i] = keep(i, ${act.forward('v', s)});`)
    : SCALAR_BODY(`    let v = x[i];
    y[i] = ${act.forward('v', s)};`)
}`,
    });
  };

  // x, dY: (n) → dX: (n), or the same as ⌈n/4⌉ vec4s
  const backwardDef = (vec4: boolean) => {
    const [E, s] = vec4 ? ['vec4f', '4'] : ['f32', ''];
    return defineKernel({
      name: kernelName('backward', vec4),
      storage: ['read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { n: u32${vec4 ? ', n4: u32' : ''} }
@group(0) @binding(0) var<storage, read> x: array<${E}>;
@group(0) @binding(1) var<storage, read> dY: array<${E}>;
@group(0) @binding(2) var<storage, read_write> dX: array<${E}>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${act.wgslHelpers(vec4)}
${
  vec4
    ? VEC_LOOP(`    let v = x[i];
    dX[i] = keep(i, ${act.backward('v', 'dY[i]', s)});`)
    : SCALAR_BODY(`    let v = x[i];
    dX[i] = ${act.backward('v', 'dY[i]', s)};`)
}`,
    });
  };

  const forwardKernel = forwardDef(false);
  const backwardKernel = backwardDef(false);
  const forwardVec4Kernel = forwardDef(true);
  const backwardVec4Kernel = backwardDef(true);

  return {
    forwardKernel,
    backwardKernel,
    forwardVec4Kernel,
    backwardVec4Kernel,
    kernels: [forwardKernel, backwardKernel, forwardVec4Kernel, backwardVec4Kernel],
    forward(engine, x, impl = 'vec4') {
      checkActivation(kernelName('forward', false), engine, x);
      const y = engine.empty(x.shape, x.dtype);
      dispatch(engine, impl, forwardVec4Kernel, forwardKernel, [x, y], x.size);
      return y;
    },
    backward(engine, x, dY, impl = 'vec4') {
      checkF32(kernelName('backward', false), x, dY);
      const dX = engine.empty(x.shape);
      dispatch(engine, impl, backwardVec4Kernel, backwardKernel, [x, dY, dX], x.size);
      return dX;
    },
  };
}
