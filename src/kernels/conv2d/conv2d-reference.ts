// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// y[b,co,oy,ox] = bias[co] + Σ_{ci,ky,kx} w[co,ci,ky,kx] · x[b,ci, oy·s − pt + ky, ox·s − pl + kx]
// (out-of-range input positions read as zero padding).

/** Geometry of one convolution; every array is NCHW / OIHW, row-major. */
export interface ConvGeometry {
  B: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
}

export function convOutputSize(g: ConvGeometry): { Ho: number; Wo: number } {
  return {
    Ho: Math.floor((g.H + g.padTop + g.padBottom - g.kh) / g.stride) + 1,
    Wo: Math.floor((g.W + g.padLeft + g.padRight - g.kw) / g.stride) + 1,
  };
}

// x: (B, Cin, H, W), w: (Cout, Cin, kh, kw), bias: (Cout) | null → y: (B, Cout, Ho, Wo)
export function conv2dForwardRef(
  g: ConvGeometry,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
): Float64Array {
  const { B, Cin, H, W, Cout, kh, kw, stride, padTop, padLeft } = g;
  const { Ho, Wo } = convOutputSize(g);
  const y = new Float64Array(B * Cout * Ho * Wo);
  for (let b = 0; b < B; b++)
    for (let co = 0; co < Cout; co++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let s = bias ? bias[co] : 0;
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride - padTop + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride - padLeft + kx;
                if (ix < 0 || ix >= W) continue;
                s += w[((co * Cin + ci) * kh + ky) * kw + kx] * x[((b * Cin + ci) * H + iy) * W + ix];
              }
            }
          y[((b * Cout + co) * Ho + oy) * Wo + ox] = s;
        }
  return y;
}

// x: (B, Cin, H, W), w: (Cout, Cin, kh, kw), dY: (B, Cout, Ho, Wo) → dX, dW, dBias.
// Written as the scatter of each output's gradient onto what produced it — a different loop
// order from the GPU kernels (which gather), so the two are independent.
export function conv2dBackwardRef(
  g: ConvGeometry,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dY: ArrayLike<number>,
): { dX: Float64Array; dW: Float64Array; dBias: Float64Array } {
  const { B, Cin, H, W, Cout, kh, kw, stride, padTop, padLeft } = g;
  const { Ho, Wo } = convOutputSize(g);
  const dX = new Float64Array(B * Cin * H * W);
  const dW = new Float64Array(Cout * Cin * kh * kw);
  const dBias = new Float64Array(Cout);
  for (let b = 0; b < B; b++)
    for (let co = 0; co < Cout; co++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          const d = dY[((b * Cout + co) * Ho + oy) * Wo + ox];
          dBias[co] += d;
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride - padTop + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride - padLeft + kx;
                if (ix < 0 || ix >= W) continue;
                const wi = ((co * Cin + ci) * kh + ky) * kw + kx;
                const xi = ((b * Cin + ci) * H + iy) * W + ix;
                dX[xi] += d * w[wi];
                dW[wi] += d * x[xi];
              }
            }
        }
  return { dX, dW, dBias };
}
