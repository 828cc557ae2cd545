// WGSL forward and backward of GELU, and their dispatch (no autograd here: see gelu.ts).
// The scalar and vec4 kernels of each pass and their dispatch come from the shared
// element-wise generator (../unary/unary-kernels.ts), once per approximation.
// WGSL has no erf, so Φ comes from a float32 erfc with small *relative* error: on the
// negative side GELU is x·(a tiny Φ), and an erf accurate only in absolute terms
// (1.5e-7) would be wrong by tens of percent there.
import type { Engine } from '../../engine/engine.ts';
import type { KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { defineUnaryActivation, type UnaryImpl } from '../unary/unary-kernels.ts';

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

export type GeluImpl = UnaryImpl;

const activation = (approximate: GeluApproximate) =>
  defineUnaryActivation({
    name: 'gelu',
    variant: approximate,
    wgslHelpers: (vec4) => geluWgsl(approximate, vec4),
    forward: (x, s) => `gelu${s}(${x})`,
    backward: (x, dY, s) => `${dY} * geluGrad${s}(${x})`,
  });

const activations = { none: activation('none'), tanh: activation('tanh') };

// x: (any) → y: same shape
export function geluForward(
  engine: Engine,
  x: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GeluImpl = 'vec4',
): Tensor {
  return activations[approximate].forward(engine, x, impl);
}

// x, dY: (any) → dX: same shape
export function geluBackward(
  engine: Engine,
  x: Tensor,
  dY: Tensor,
  approximate: GeluApproximate = 'none',
  impl: GeluImpl = 'vec4',
): Tensor {
  return activations[approximate].backward(engine, x, dY, impl);
}

const { none, tanh } = activations;
export const geluKernels: KernelDef[] = [
  none.forwardKernel,
  tanh.forwardKernel,
  none.backwardKernel,
  tanh.backwardKernel,
  none.forwardVec4Kernel,
  tanh.forwardVec4Kernel,
  none.backwardVec4Kernel,
  tanh.backwardVec4Kernel,
];
