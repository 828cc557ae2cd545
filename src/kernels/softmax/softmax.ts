// Softmax over the last dimension as a differentiable op. The backward needs only the
// output, so y (not x) is what the tape keeps.
import type { Tensor } from '../../engine/tensor.ts';
import { softmaxBackward, softmaxForward } from './softmax-kernels.ts';

// x: (…, N) → (…, N)
export function softmax(x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new Error(`softmax: f32 only, got ${x}`);
  const e = x.engine;
  const y = softmaxForward(e, x);
  e.record('softmax', [x], y, [y], (dY) => [softmaxBackward(e, y, dY)]);
  return y;
}
