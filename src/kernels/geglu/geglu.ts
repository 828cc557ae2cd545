// GEGLU (diffusers' feed-forward gate) as a differentiable op, applied to the output of
// its (…, 2F) projection: y = x[…, :F] · gelu(x[…, F:]).
import type { Tensor } from '../../engine/tensor.ts';
import type { GeluApproximate } from '../gelu/gelu-kernels.ts';
import { gegluBackward, gegluForward } from './geglu-kernels.ts';

export function geglu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  if (x.dtype !== 'f32') throw new Error(`geglu: f32 only, got ${x}`);
  const e = x.engine;
  const y = gegluForward(e, x, approximate);
  e.record('geglu', [x], y, [x], (dY) => [gegluBackward(e, x, dY, approximate)]);
  return y;
}
