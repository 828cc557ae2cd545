// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// PyTorch LayerNorm over the last dimension C, per row r:
//   μ = mean(x_r), σ² = mean((x_r − μ)²) (biased), x̂ = (x − μ)/√(σ² + ε), y = x̂·w + b.
// Backward, with g = dY:
//   dB[c] = Σ_r g,  dW[c] = Σ_r g·x̂,  dX = rstd·(g·w − mean_row(g·w) − x̂·mean_row(g·w·x̂)).

export interface LayerNormRefResult {
  y: Float64Array;
  /** (R) */
  mean: Float64Array;
  /** (R): 1/√(σ² + ε) */
  rstd: Float64Array;
}

// x: (R, C); weight, bias: (C) → y: (R, C), mean, rstd: (R)
export function layerNormForwardRef(
  x: ArrayLike<number>,
  cols: number,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps = 1e-5,
): LayerNormRefResult {
  const rows = x.length / cols;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[base + c];
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[base + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) y[base + c] = (x[base + c] - mu) * rs * weight[c] + bias[c];
  }
  return { y, mean, rstd };
}

export interface LayerNormRefGrads {
  dX: Float64Array;
  dW: Float64Array;
  dB: Float64Array;
}

// x, dY: (R, C); weight: (C) → dX: (R, C), dW, dB: (C)
export function layerNormBackwardRef(
  x: ArrayLike<number>,
  cols: number,
  weight: ArrayLike<number>,
  dY: ArrayLike<number>,
  eps = 1e-5,
): LayerNormRefGrads {
  const rows = x.length / cols;
  const { mean, rstd } = layerNormForwardRef(x, cols, weight, new Float64Array(cols), eps);
  const dX = new Float64Array(x.length);
  const dW = new Float64Array(cols);
  const dB = new Float64Array(cols);
  const xhat = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let sumGW = 0;
    let sumGWX = 0;
    for (let c = 0; c < cols; c++) {
      const g = dY[base + c];
      xhat[c] = (x[base + c] - mean[r]) * rstd[r];
      dB[c] += g;
      dW[c] += g * xhat[c];
      sumGW += g * weight[c];
      sumGWX += g * weight[c] * xhat[c];
    }
    for (let c = 0; c < cols; c++) {
      dX[base + c] = rstd[r] * (dY[base + c] * weight[c] - sumGW / cols - xhat[c] * (sumGWX / cols));
    }
  }
  return { dX, dW, dB };
}
