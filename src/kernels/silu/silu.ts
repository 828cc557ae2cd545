// SiLU (swish) as a differentiable op: forward on the GPU, backward recorded on the tape.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { siluBackward, siluForward } from './silu-kernels.ts';

export function silu(x: Tensor): Tensor {
  // fp16 x (inference only) gives an fp16 y; training keeps fp32.
  activationDtype('silu', x);
  const e = x.engine;
  const y = siluForward(e, x);
  e.record('silu', [x], y, [x], (dY) => [siluBackward(e, x, dY)]);
  return y;
}
