// Slicing along one axis, and chunk (equal slices), as differentiable ops. A slice's backward
// places dY into zeros of the input's shape; the tape sums the pieces of a chunk.
import type { Tensor } from '../../engine/tensor.ts';
import { normalizeAxis, sliceBackward, sliceForward } from './concat-kernels.ts';

// x: (…, n, …) → (…, length, …): the `length` entries from `start` along axis
export function slice(x: Tensor, axis: number, start: number, length: number): Tensor {
  const e = x.engine;
  const y = sliceForward(e, x, axis, start, length);
  const shape = x.shape;
  e.record('slice', [x], y, [], (dY) => [sliceBackward(e, dY, shape, axis, start, length)]);
  return y;
}

/**
 * Split x into `n` slices along axis, PyTorch style: each ⌈size / n⌉ long, the last one
 * shorter (and fewer than n when the size does not fill them).
 */
export function chunk(x: Tensor, n: number, axis: number): Tensor[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`chunk: bad count ${n}`);
  const size = x.shape[normalizeAxis(axis, x.rank, 'chunk')];
  const step = Math.ceil(size / n);
  const out: Tensor[] = [];
  for (let start = 0; start < size; start += step) out.push(slice(x, axis, start, Math.min(step, size - start)));
  return out;
}
