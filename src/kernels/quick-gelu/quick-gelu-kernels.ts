// WGSL forward and backward of quick GELU, x·σ(1.702x) (CLIP's activation), and their
// dispatch (no autograd here: see quick-gelu.ts). The scalar and vec4 kernels and their
// dispatch come from the shared element-wise generator (../unary/unary-kernels.ts); only
// the activation's WGSL lives here.
import type { Engine } from '../../engine/engine.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { defineUnaryActivation, type UnaryImpl } from '../unary/unary-kernels.ts';

export type QuickGeluImpl = UnaryImpl;

// exp overflows to inf for very negative x, giving σ = 0 and y = −0: the right limit.
// quickGeluGrad takes dY (`g`) so that the product keeps the order g·σ·(1 + 1.702x(1 − σ)).
const GATE = (T: string, s: string) => /* wgsl */ `
fn gate${s}(x: ${T}) -> ${T} { return 1.0 / (1.0 + exp(-1.702 * x)); }
fn quickGeluGrad${s}(x: ${T}, g: ${T}) -> ${T} {
  let s = gate${s}(x);
  return g * s * (1.0 + 1.702 * x * (1.0 - s));
}`;

const quickGelu = defineUnaryActivation({
  name: 'quick_gelu',
  wgslHelpers: (vec4) => (vec4 ? GATE('vec4f', '4') : GATE('f32', '')),
  forward: (x, s) => `${x} * gate${s}(${x})`,
  backward: (x, dY, s) => `quickGeluGrad${s}(${x}, ${dY})`,
});

// x: (any) → y: same shape
export function quickGeluForward(engine: Engine, x: Tensor, impl: QuickGeluImpl = 'vec4'): Tensor {
  return quickGelu.forward(engine, x, impl);
}

// x, dY: (any) → dX: same shape
export function quickGeluBackward(engine: Engine, x: Tensor, dY: Tensor, impl: QuickGeluImpl = 'vec4'): Tensor {
  return quickGelu.backward(engine, x, dY, impl);
}

export const quickGeluKernels = quickGelu.kernels;
