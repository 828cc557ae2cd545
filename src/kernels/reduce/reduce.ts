// Sum and mean over axes as differentiable ops: forward on the GPU, backward (a scaled
// broadcast of dY back to the input's shape) recorded on the tape.
import type { Tensor } from '../../engine/tensor.ts';
import { normalizeAxes } from './reduce-plan.ts';
import { sumBackward, sumForward } from './reduce-kernels.ts';

function reduce(
  name: string,
  x: Tensor,
  axes: readonly number[] | undefined,
  keepDims: boolean,
  mean: boolean,
): Tensor {
  if (x.dtype !== 'f32') throw new Error(`${name}: f32 only, got ${x}`);
  const e = x.engine;
  const ax = normalizeAxes(x.rank, axes);
  const scale = mean ? 1 / ax.reduce((a, d) => a * x.shape[d], 1) : 1;
  const y = sumForward(e, x, ax, keepDims, scale);
  const shape = [...x.shape];
  e.record(name, [x], y, [], (dY) => [sumBackward(e, dY, shape, ax, scale)]);
  return y;
}

/** Σ over `axes` (all when omitted); reduced axes are dropped unless keepDims. */
export const sum = (x: Tensor, axes?: readonly number[], keepDims = false): Tensor =>
  reduce('sum', x, axes, keepDims, false);

/** Mean over `axes` (all when omitted); reduced axes are dropped unless keepDims. */
export const mean = (x: Tensor, axes?: readonly number[], keepDims = false): Tensor =>
  reduce('mean', x, axes, keepDims, true);
