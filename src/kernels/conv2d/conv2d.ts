// 2-D convolution (PyTorch semantics, groups = 1) as a differentiable op: forward on the GPU,
// backward (dX, dW, dBias) recorded on the tape.
import type { Tensor } from '../../engine/tensor.ts';
import type { Conv2dKernelOptions } from './conv2d-kernels.ts';
import {
  conv2dBackwardBiasSplit,
  conv2dBackwardInputSplit,
  conv2dBackwardWeightSplit,
  conv2dForwardSplit,
} from './conv2d-split.ts';

// x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw), bias: (Cout) → (B, Cout, Ho, Wo). f32
// activations; the weight f32 or fp16 (a frozen weight, read without an fp32 copy).
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dKernelOptions = {}): Tensor {
  const e = x.engine;
  const b = bias ?? null;
  const y = conv2dForwardSplit(e, x, weight, b, opts);
  const inputs = b ? [x, weight, b] : [x, weight];
  // dX needs only the weight and dW only x: a frozen weight's input need not stay alive.
  const saved = [...(weight.requiresGrad ? [x] : []), ...(x.requiresGrad ? [weight] : [])];
  e.record('conv2d', inputs, y, saved, (dY) => {
    const grads = [
      x.requiresGrad ? conv2dBackwardInputSplit(e, x.shape, weight, dY, opts) : null,
      weight.requiresGrad ? conv2dBackwardWeightSplit(e, x, weight.shape, dY, opts) : null,
    ];
    if (b) grads.push(b.requiresGrad ? conv2dBackwardBiasSplit(e, x.shape, weight.shape, dY, opts) : null);
    return grads;
  });
  return y;
}
