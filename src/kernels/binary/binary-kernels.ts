// WGSL add/sub/mul/div with NumPy broadcasting, y = s·x + t for the scalar ops, and their
// dispatch (no autograd here: see binary.ts). A backward first forms the per-element
// gradient in the output's shape, then sums it over the broadcast axes (reduce/).
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { reduceToShape } from '../reduce/reduce-kernels.ts';
import { broadcastLayout, broadcastParams, broadcastShapes, WGSL_BROADCAST } from './broadcast.ts';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

const EXPRESSION: Record<BinaryOp, string> = { add: 'u + v', sub: 'u - v', mul: 'u * v', div: 'u / v' };

// a, b: broadcast to y's shape → y = a ∘ b
const forwardKernel = (op: BinaryOp) =>
  defineKernel({
    name: `binary_${op}`,
    storage: ['read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_BROADCAST}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i >= p.n) { return; }
  let o = broadcastOffsets(i);
  let u = a[o.x];
  let v = b[o.y];
  y[i] = ${EXPRESSION[op]};
}`,
  });

const forwardKernels: Record<BinaryOp, KernelDef> = {
  add: forwardKernel('add'),
  sub: forwardKernel('sub'),
  mul: forwardKernel('mul'),
  div: forwardKernel('div'),
};

// The per-element gradient w.r.t. a or b of mul and div (add/sub need none: it is ±dY).
// Inputs: g = dY, u = a, v = b at the broadcast offsets.
const GRADIENT = {
  mul_a: 'g * v',
  mul_b: 'g * u',
  div_a: 'g / v',
  div_b: '-g * u / (v * v)',
};
type GradientName = keyof typeof GRADIENT;

// dY: y's shape, a, b: broadcast to it → g: y's shape (summed to a's or b's shape afterwards)
const gradientKernel = (name: GradientName) =>
  defineKernel({
    name: `binary_grad_${name}`,
    storage: ['read', 'read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> dY: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> dX: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${WGSL_BROADCAST}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i >= p.n) { return; }
  let o = broadcastOffsets(i);
  let g = dY[i];
  let u = a[o.x];
  let v = b[o.y];
  dX[i] = ${GRADIENT[name]};
}`,
  });

const gradientKernels = Object.fromEntries(
  (Object.keys(GRADIENT) as GradientName[]).map((k) => [k, gradientKernel(k)]),
) as Record<GradientName, KernelDef>;

// x: (n) → y = s·x + t: (n)
const affineKernel = defineKernel({
  name: 'binary_affine',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, s: f32, t: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = p.s * x[i] + p.t; }
}`,
});

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${op}: f32 only, got ${t}`);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.join() === b.join();

// a: A, b: B (broadcastable) → y: broadcastShapes(A, B)
export function binaryForward(engine: Engine, op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  checkF32(op, a, b);
  const y = engine.empty(broadcastShapes(a.shape, b.shape));
  const layout = broadcastLayout(y.shape, [a.shape, b.shape]);
  engine.dispatch(forwardKernels[op], [a, b, y], grid1d(y.size, ELEMENTWISE_WG), broadcastParams(y.size, layout));
  return y;
}

/**
 * a: A, b: B, dY: broadcastShapes(A, B) → [dA: A | null, dB: B | null], null where `needs`
 * says no. Where dY already is the gradient (add, or sub's dA, of an input with dY's shape)
 * dY itself is returned: the tape copies it if it must hand it out twice.
 */
export function binaryBackward(
  engine: Engine,
  op: BinaryOp,
  a: Tensor,
  b: Tensor,
  dY: Tensor,
  needs: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  checkF32(op, a, b, dY);
  const layout = broadcastLayout(dY.shape, [a.shape, b.shape]);
  const grad = (x: Tensor, which: 'a' | 'b'): Tensor => {
    if (op === 'add' || op === 'sub') {
      const sign = op === 'sub' && which === 'b' ? -1 : 1;
      return sign === 1 && sameShape(x.shape, dY.shape) ? dY : reduceToShape(engine, dY, x.shape, sign);
    }
    // An input that was not broadcast takes the per-element gradient as it is.
    const direct = x.size === dY.size;
    const g = engine.empty(direct ? x.shape : dY.shape);
    const params = broadcastParams(dY.size, layout);
    engine.dispatch(gradientKernels[`${op}_${which}`], [dY, a, b, g], grid1d(dY.size, ELEMENTWISE_WG), params);
    if (direct) return g;
    const reduced = reduceToShape(engine, g, x.shape);
    g.dispose();
    return reduced;
  };
  return [needs[0] ? grad(a, 'a') : null, needs[1] ? grad(b, 'b') : null];
}

// x: (any) → y = s·x + t: same shape
export function affineForward(engine: Engine, x: Tensor, s: number, t: number): Tensor {
  checkF32('affine', x);
  const y = engine.empty(x.shape);
  engine.dispatch(affineKernel, [x, y], grid1d(x.size, ELEMENTWISE_WG), [u32(x.size), f32(s), f32(t)]);
  return y;
}

export const binaryKernels: KernelDef[] = [
  ...Object.values(forwardKernels),
  ...Object.values(gradientKernels),
  affineKernel,
];
