// WGSL forward and backward of SiLU, x·σ(x), and their dispatch (no autograd here: see
// silu.ts). The scalar and vec4 kernels and their dispatch come from the shared element-wise
// generator (../unary/unary-kernels.ts); only the activation's WGSL lives here.
import type { Engine } from '../../engine/engine.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { defineUnaryActivation, type UnaryImpl } from '../unary/unary-kernels.ts';

export type SiluImpl = UnaryImpl;

// exp(-x) overflows to inf for x < -88, giving σ = 0 and y = -0: the right limit.
// siluGrad takes dY (`g`) so that the product keeps the order g·σ·(1 + x(1 − σ)).
const SIGMOID = (T: string, s: string) => /* wgsl */ `
fn sigmoid${s}(x: ${T}) -> ${T} { return 1.0 / (1.0 + exp(-x)); }
fn siluGrad${s}(x: ${T}, g: ${T}) -> ${T} {
  let s = sigmoid${s}(x);
  return g * s * (1.0 + x * (1.0 - s));
}`;

const silu = defineUnaryActivation({
  name: 'silu',
  wgslHelpers: (vec4) => (vec4 ? SIGMOID('vec4f', '4') : SIGMOID('f32', '')),
  forward: (x, s) => `${x} * sigmoid${s}(${x})`,
  backward: (x, dY, s) => `siluGrad${s}(${x}, ${dY})`,
});

// x: (any) → y: same shape
export function siluForward(engine: Engine, x: Tensor, impl: SiluImpl = 'vec4'): Tensor {
  return silu.forward(engine, x, impl);
}

// x, dY: (any) → dX: same shape
export function siluBackward(engine: Engine, x: Tensor, dY: Tensor, impl: SiluImpl = 'vec4'): Tensor {
  return silu.backward(engine, x, dY, impl);
}

export const siluKernels = silu.kernels;
