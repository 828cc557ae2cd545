// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// Written per element with full multi-indices (the kernels use flattened row copies instead).

const strides = (shape: readonly number[]): number[] => {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
};

/** Multi-index of flat element i of a row-major array of `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

const ravel = (idx: readonly number[], shape: readonly number[]): number =>
  idx.reduce((acc, v, d) => acc + v * strides(shape)[d], 0);

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

// xs[i]: shapes[i], equal except along axis → y: shapes summed along axis
export function concatForwardRef(
  xs: readonly ArrayLike<number>[],
  shapes: readonly (readonly number[])[],
  axis: number,
): Float64Array {
  const outShape = shapes[0].map((d, k) => (k === axis ? shapes.reduce((a, s) => a + s[axis], 0) : d));
  const y = new Float64Array(size(outShape));
  let offset = 0;
  xs.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) {
      const idx = unravel(j, shapes[i]);
      idx[axis] += offset;
      y[ravel(idx, outShape)] = x[j];
    }
    offset += shapes[i][axis];
  });
  return y;
}

// dY: concatenated shape → dX[i]: shapes[i]
export function concatBackwardRef(
  dY: ArrayLike<number>,
  shapes: readonly (readonly number[])[],
  axis: number,
): Float64Array[] {
  const outShape = shapes[0].map((d, k) => (k === axis ? shapes.reduce((a, s) => a + s[axis], 0) : d));
  let offset = 0;
  return shapes.map((shape) => {
    const dX = new Float64Array(size(shape));
    for (let j = 0; j < dX.length; j++) {
      const idx = unravel(j, shape);
      idx[axis] += offset;
      dX[j] = dY[ravel(idx, outShape)];
    }
    offset += shape[axis];
    return dX;
  });
}

// x: shape → y: shape with `length` entries from `start` along axis
export function sliceForwardRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  start: number,
  length: number,
): Float64Array {
  const outShape = shape.map((d, k) => (k === axis ? length : d));
  const y = new Float64Array(size(outShape));
  for (let j = 0; j < y.length; j++) {
    const idx = unravel(j, outShape);
    idx[axis] += start;
    y[j] = x[ravel(idx, shape)];
  }
  return y;
}

// dY: sliced shape → dX: shape (zero outside the slice)
export function sliceBackwardRef(
  dY: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  start: number,
  length: number,
): Float64Array {
  const outShape = shape.map((d, k) => (k === axis ? length : d));
  const dX = new Float64Array(size(shape));
  for (let j = 0; j < dY.length; j++) {
    const idx = unravel(j, outShape);
    idx[axis] += start;
    dX[ravel(idx, shape)] += dY[j];
  }
  return dX;
}
