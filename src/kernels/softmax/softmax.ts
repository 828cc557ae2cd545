// Softmax over the last dimension as a differentiable op. The backward needs only the
// output, so y (not x) is what the tape keeps.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { softmaxBackward, softmaxForward } from './softmax-kernels.ts';

// x: (…, N) → (…, N) in x's dtype: f32, or fp16 activations at inference (activationDtype;
// the max and sum stay f32, only x is read from and y stored as f16).
export function softmax(x: Tensor): Tensor {
  activationDtype('softmax', x);
  const e = x.engine;
  const y = softmaxForward(e, x);
  e.record('softmax', [x], y, [y], (dY) => [softmaxBackward(e, y, dY)]);
  return y;
}
