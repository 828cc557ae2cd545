// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// y = x·σ(x);  dy/dx = σ(x)·(1 + x·(1 − σ(x)))

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// x: (n) → y: (n)
export function siluForwardRef(x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * sigmoid(x[i]);
  return y;
}

// x, dY: (n) → dX: (n)
export function siluBackwardRef(x: ArrayLike<number>, dY: ArrayLike<number>): Float64Array {
  const dX = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = sigmoid(x[i]);
    dX[i] = dY[i] * s * (1 + x[i] * (1 - s));
  }
  return dX;
}
