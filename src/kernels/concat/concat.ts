// Concatenation along any axis (UNet skip connections: channels of (B, C, H, W)) as a
// differentiable op; its backward hands each input its slice of dY.
import type { Tensor } from '../../engine/tensor.ts';
import { concatBackward, concatForward } from './concat-kernels.ts';

// xs[i]: (…, n_i, …) → (…, Σ n_i, …) along axis (negative counts from the end)
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const e = xs[0].engine;
  const y = concatForward(e, xs, axis);
  const shapes = xs.map((x) => x.shape);
  e.record('concat', xs, y, [], (dY) =>
    concatBackward(
      e,
      dY,
      shapes,
      axis,
      xs.map((x) => x.requiresGrad),
    ),
  );
  return y;
}
