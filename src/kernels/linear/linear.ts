// Linear layer (PyTorch convention, y = x·Wᵀ + b) as a differentiable op.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { linearBackwardSplit, linearForwardSplit } from './linear-split.ts';

// x: (…, in), weight: (out, in), bias: (out) → y: (…, out), in x's dtype. x is the
// activation: f32, or f16 at inference on shader-f16 adapters (activationDtype). The weight
// and bias are f32 or fp16 either way: a frozen fp16 weight is read as f16 (shader-f16) or
// packed pairs (without) and never widened to an fp32 copy; an f32 weight with fp16
// activations (LoRA at generate time) is read as it is, the result stored as f16.
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  activationDtype('linear', x);
  const e = x.engine;
  const y = linearForwardSplit(e, x, weight, bias);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  // dX needs only the weight and dW only x: a frozen weight's input need not stay alive.
  const saved = [...(weight.requiresGrad ? [x] : []), ...(x.requiresGrad ? [weight] : [])];
  e.record('linear', inputs, y, saved, (dY) => {
    const grads = linearBackwardSplit(e, x, weight, dY, [x.requiresGrad, weight.requiresGrad, !!bias?.requiresGrad]);
    return bias ? grads : grads.slice(0, 2);
  });
  return y;
}
