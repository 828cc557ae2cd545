// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// PyTorch GroupNorm: per (batch, group) over the group's channels and all spatial positions,
//   μ = mean(x), σ² = mean((x − μ)²) (biased), x̂ = (x − μ)/√(σ² + ε), z = x̂·w[c] + b[c],
//   y = z, or SiLU(z) for the fused variant.
// Backward, with g = dY (times SiLU'(z) when fused) and N = the group's element count:
//   dB[c] = Σ_{b,s} g,  dW[c] = Σ_{b,s} g·x̂,
//   dX = rstd·(g·w − mean_group(g·w) − x̂·mean_group(g·w·x̂)).

export interface GroupNormDims {
  batch: number;
  channels: number;
  /** Product of the spatial dimensions (1 for a (B, C) input). */
  spatial: number;
  groups: number;
}

export interface GroupNormRefResult {
  y: Float64Array;
  /** (B, G) */
  mean: Float64Array;
  /** (B, G): 1/√(σ² + ε) */
  rstd: Float64Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

// x: (B, C, S), weight, bias: (C) → y: (B, C, S), mean, rstd: (B, G)
export function groupNormForwardRef(
  x: ArrayLike<number>,
  dims: GroupNormDims,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps = 1e-5,
  silu = false,
): GroupNormRefResult {
  const { batch, channels, spatial, groups } = dims;
  const cpg = channels / groups;
  const n = cpg * spatial;
  const y = new Float64Array(batch * channels * spatial);
  const mean = new Float64Array(batch * groups);
  const rstd = new Float64Array(batch * groups);
  for (let bg = 0; bg < batch * groups; bg++) {
    const base = bg * n; // the group's channels are contiguous in (B, C, S)
    let s = 0;
    for (let i = 0; i < n; i++) s += x[base + i];
    const mu = s / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[base + i] - mu) ** 2;
    const r = 1 / Math.sqrt(v / n + eps);
    mean[bg] = mu;
    rstd[bg] = r;
    const c0 = (bg % groups) * cpg;
    for (let i = 0; i < n; i++) {
      const c = c0 + Math.floor(i / spatial);
      const z = (x[base + i] - mu) * r * weight[c] + bias[c];
      y[base + i] = silu ? z * sigmoid(z) : z;
    }
  }
  return { y, mean, rstd };
}

export interface GroupNormRefGrads {
  dX: Float64Array;
  dW: Float64Array;
  dB: Float64Array;
}

// x, dY: (B, C, S), weight, bias: (C) → dX: (B, C, S), dW, dB: (C)
export function groupNormBackwardRef(
  x: ArrayLike<number>,
  dims: GroupNormDims,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  dY: ArrayLike<number>,
  eps = 1e-5,
  silu = false,
): GroupNormRefGrads {
  const { batch, channels, spatial, groups } = dims;
  const cpg = channels / groups;
  const n = cpg * spatial;
  const { mean, rstd } = groupNormForwardRef(x, dims, weight, bias, eps, silu);
  const dX = new Float64Array(x.length);
  const dW = new Float64Array(channels);
  const dB = new Float64Array(channels);
  const xhat = new Float64Array(n);
  const g = new Float64Array(n);
  for (let bg = 0; bg < batch * groups; bg++) {
    const base = bg * n;
    const c0 = (bg % groups) * cpg;
    let sumGW = 0;
    let sumGWX = 0;
    for (let i = 0; i < n; i++) {
      const c = c0 + Math.floor(i / spatial);
      xhat[i] = (x[base + i] - mean[bg]) * rstd[bg];
      g[i] = dY[base + i];
      if (silu) {
        const z = xhat[i] * weight[c] + bias[c];
        const s = sigmoid(z);
        g[i] *= s * (1 + z * (1 - s));
      }
      dB[c] += g[i];
      dW[c] += g[i] * xhat[i];
      sumGW += g[i] * weight[c];
      sumGWX += g[i] * weight[c] * xhat[i];
    }
    for (let i = 0; i < n; i++) {
      const c = c0 + Math.floor(i / spatial);
      dX[base + i] = rstd[bg] * (g[i] * weight[c] - sumGW / n - xhat[i] * (sumGWX / n));
    }
  }
  return { dX, dW, dB };
}
