// Linear layer (PyTorch convention, y = x·Wᵀ + b) as a differentiable op.
import type { Tensor } from '../../engine/tensor.ts';
import { linearBackwardSplit, linearForwardSplit } from './linear-split.ts';

// x: (…, in), weight: (out, in), bias: (out) → y: (…, out). f32; f16 storage on
// shader-f16 adapters (all operands of one dtype); or f32 with a frozen fp16 weight, read
// as f16 (shader-f16) or packed pairs (without) and never widened to an fp32 copy.
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
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
