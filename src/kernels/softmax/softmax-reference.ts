// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// y = exp(x − max x) / Σ exp(x − max x) over the last dimension;
// dX = y · (dY − Σ dY·y), the Jacobian-vector product of softmax along each row.

// x: (rows, n) → y: (rows, n)
export function softmaxForwardRef(x: ArrayLike<number>, n: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += n) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x[base + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += y[base + j] = Math.exp(x[base + j] - max);
    for (let j = 0; j < n; j++) y[base + j] /= sum;
  }
  return y;
}

// y, dY: (rows, n) → dX: (rows, n)
export function softmaxBackwardRef(y: ArrayLike<number>, dY: ArrayLike<number>, n: number): Float64Array {
  const dX = new Float64Array(y.length);
  for (let base = 0; base < y.length; base += n) {
    let dot = 0;
    for (let j = 0; j < n; j++) dot += dY[base + j] * y[base + j];
    for (let j = 0; j < n; j++) dX[base + j] = y[base + j] * (dY[base + j] - dot);
  }
  return dX;
}
