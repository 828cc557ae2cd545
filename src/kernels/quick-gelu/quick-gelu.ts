// Quick GELU (CLIP's activation) as a differentiable op.
import type { Tensor } from '../../engine/tensor.ts';
import { quickGeluBackward, quickGeluForward } from './quick-gelu-kernels.ts';

export function quickGelu(x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new Error(`quickGelu: f32 only, got ${x}`);
  const e = x.engine;
  const y = quickGeluForward(e, x);
  e.record('quickGelu', [x], y, [x], (dY) => [quickGeluBackward(e, x, dY)]);
  return y;
}
