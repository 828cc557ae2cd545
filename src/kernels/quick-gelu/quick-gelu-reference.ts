// CPU reference (plain loops, float64) for CLIP's quick GELU:
// y = x·σ(1.702x);  dy/dx = σ(1.702x)·(1 + 1.702x·(1 − σ(1.702x)))

export const QUICK_GELU_ALPHA = 1.702;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// x: (n) → y: (n)
export function quickGeluForwardRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => v * sigmoid(QUICK_GELU_ALPHA * v));
}

// x, dY: (n) → dX: (n)
export function quickGeluBackwardRef(x: ArrayLike<number>, dY: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const s = sigmoid(QUICK_GELU_ALPHA * v);
    return dY[i] * s * (1 + QUICK_GELU_ALPHA * v * (1 - s));
  });
}
