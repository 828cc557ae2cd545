// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// PyTorch's convention: y = x·Wᵀ + b with x: (rows, in), W: (out, in), b: (out).
//   dX = dY·W,  dW = dYᵀ·x,  dB = Σ_rows dY

// x: (rows, in), w: (out, in), bias: (out) | null → y: (rows, out)
export function linearForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  inFeatures: number,
  outFeatures: number,
): Float64Array {
  const rows = x.length / inFeatures;
  const y = new Float64Array(rows * outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inFeatures; i++) s += x[r * inFeatures + i] * w[o * inFeatures + i];
      y[r * outFeatures + o] = s;
    }
  }
  return y;
}

// x: (rows, in), w: (out, in), dY: (rows, out) → [dX: (rows, in), dW: (out, in), dB: (out)]
export function linearBackwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dY: ArrayLike<number>,
  inFeatures: number,
  outFeatures: number,
): [Float64Array, Float64Array, Float64Array] {
  const rows = x.length / inFeatures;
  const dX = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const dB = new Float64Array(outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      const g = dY[r * outFeatures + o];
      dB[o] += g;
      for (let i = 0; i < inFeatures; i++) {
        dX[r * inFeatures + i] += g * w[o * inFeatures + i];
        dW[o * inFeatures + i] += g * x[r * inFeatures + i];
      }
    }
  }
  return [dX, dW, dB];
}
