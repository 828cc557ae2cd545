// SiLU (swish) as a differentiable op: forward on the GPU, backward recorded on the tape.
import type { Tensor } from '../../engine/tensor.ts';
import { siluBackward, siluForward } from './silu-kernels.ts';

export function silu(x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new Error(`silu: f32 only, got ${x}`);
  const e = x.engine;
  const y = siluForward(e, x);
  e.record('silu', [x], y, [x], (dY) => [siluBackward(e, x, dY)]);
  return y;
}
