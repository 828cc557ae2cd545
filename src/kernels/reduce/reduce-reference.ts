// CPU reference (plain loops, float64) for sums over axes and their backward. It walks
// every input element's multi-index, independent of the step plan the GPU uses.
import { normalizeAxes, reducedShape } from './reduce-plan.ts';

/** For each input element, the flat index of the output element it contributes to. */
function outputIndex(shape: readonly number[], axes: readonly number[]): Int32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const map = new Int32Array(n);
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let d = 0; d < shape.length; d++) if (!axes.includes(d)) o = o * shape[d] + coord[d];
    map[i] = o;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++coord[d] < shape[d]) break;
      coord[d] = 0;
    }
  }
  return map;
}

const count = (shape: readonly number[], axes: readonly number[]) => axes.reduce((a, d) => a * shape[d], 1);

// x: shape → y: shape with `axes` summed (removed, or 1 with keepDims)
export function sumForwardRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axes?: readonly number[],
  keepDims = false,
  scale = 1,
): { y: Float64Array; shape: number[] } {
  const ax = normalizeAxes(shape.length, axes);
  const outShape = reducedShape(shape, ax, keepDims);
  const y = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  const map = outputIndex(shape, ax);
  for (let i = 0; i < x.length; i++) y[map[i]] += x[i];
  for (let i = 0; i < y.length; i++) y[i] *= scale;
  return { y, shape: outShape };
}

// dY: reduced shape → dX: shape, dX[i] = scale · dY[the output x[i] went to]
export function sumBackwardRef(
  dY: ArrayLike<number>,
  shape: readonly number[],
  axes?: readonly number[],
  scale = 1,
): Float64Array {
  const map = outputIndex(shape, normalizeAxes(shape.length, axes));
  return Float64Array.from(map, (o) => scale * dY[o]);
}

export function meanForwardRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axes?: readonly number[],
  keepDims = false,
) {
  return sumForwardRef(x, shape, axes, keepDims, 1 / count(shape, normalizeAxes(shape.length, axes)));
}

export function meanBackwardRef(
  dY: ArrayLike<number>,
  shape: readonly number[],
  axes?: readonly number[],
): Float64Array {
  return sumBackwardRef(dY, shape, axes, 1 / count(shape, normalizeAxes(shape.length, axes)));
}
