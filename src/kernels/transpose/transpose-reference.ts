// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// y[i_0, …, i_{r−1}] = x[j] with j's axis perm[d] set to i_d: output axis d is input axis perm[d].

const unravel = (i: number, shape: readonly number[]): number[] => {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
};

const ravel = (idx: readonly number[], shape: readonly number[]): number => {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + idx[d];
  return flat;
};

// x: shape → y: perm.map(d => shape[d])
export function transposeForwardRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  perm: readonly number[],
): Float64Array {
  const outShape = perm.map((d) => shape[d]);
  const y = new Float64Array(x.length);
  for (let i = 0; i < y.length; i++) {
    const out = unravel(i, outShape);
    const inIdx = new Array<number>(shape.length);
    perm.forEach((d, k) => (inIdx[d] = out[k]));
    y[i] = x[ravel(inIdx, shape)];
  }
  return y;
}

// dY: perm.map(d => shape[d]) → dX: shape. Scatter of each output gradient back to the input
// element it was read from (the GPU runs the forward with the inverse permutation instead).
export function transposeBackwardRef(
  dY: ArrayLike<number>,
  shape: readonly number[],
  perm: readonly number[],
): Float64Array {
  const outShape = perm.map((d) => shape[d]);
  const dX = new Float64Array(dY.length);
  for (let i = 0; i < dY.length; i++) {
    const out = unravel(i, outShape);
    const inIdx = new Array<number>(shape.length);
    perm.forEach((d, k) => (inIdx[d] = out[k]));
    dX[ravel(inIdx, shape)] += dY[i];
  }
  return dX;
}
