// GELU as a differentiable op: the exact erf form by default (PyTorch's F.gelu, used by
// diffusers' GEGLU), or the tanh approximation.
import type { Tensor } from '../../engine/tensor.ts';
import { geluBackward, geluForward, type GeluApproximate } from './gelu-kernels.ts';

export function gelu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  if (x.dtype !== 'f32') throw new Error(`gelu: f32 only, got ${x}`);
  const e = x.engine;
  const y = geluForward(e, x, approximate);
  e.record('gelu', [x], y, [x], (dY) => [geluBackward(e, x, dY, approximate)]);
  return y;
}
