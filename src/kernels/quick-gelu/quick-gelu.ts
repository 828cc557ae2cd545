// Quick GELU (CLIP's activation) as a differentiable op.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { quickGeluBackward, quickGeluForward } from './quick-gelu-kernels.ts';

export function quickGelu(x: Tensor): Tensor {
  // fp16 x (inference only) gives an fp16 y; training keeps fp32.
  activationDtype('quickGelu', x);
  const e = x.engine;
  const y = quickGeluForward(e, x);
  e.record('quickGelu', [x], y, [x], (dY) => [quickGeluBackward(e, x, dY)]);
  return y;
}
