// GELU as a differentiable op: the exact erf form by default (PyTorch's F.gelu, used by
// diffusers' GEGLU), or the tanh approximation.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { geluBackward, geluForward, type GeluApproximate } from './gelu-kernels.ts';

export function gelu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  // fp16 x (inference only) gives an fp16 y; training keeps fp32.
  activationDtype('gelu', x);
  const e = x.engine;
  const y = geluForward(e, x, approximate);
  e.record('gelu', [x], y, [x], (dY) => [geluBackward(e, x, dY, approximate)]);
  return y;
}
