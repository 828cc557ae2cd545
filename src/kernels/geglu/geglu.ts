// GEGLU (diffusers' feed-forward gate) as a differentiable op, applied to the output of
// its (…, 2F) projection: y = x[…, :F] · gelu(x[…, F:]).
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { GeluApproximate } from '../gelu/gelu-kernels.ts';
import { gegluBackward, gegluForward } from './geglu-kernels.ts';

export function geglu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  // fp16 x (inference only) gives an fp16 y; training keeps fp32.
  activationDtype('geglu', x);
  const e = x.engine;
  const y = gegluForward(e, x, approximate);
  e.record('geglu', [x], y, [x], (dY) => [gegluBackward(e, x, dY, approximate)]);
  return y;
}
