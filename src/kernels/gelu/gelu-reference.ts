// CPU reference (plain loops, float64) for GELU, with its own high-accuracy erf: the WGSL
// kernels use a float32 approximation, and this is what they are measured against.
//   exact: y = x·Φ(x), Φ(x) = ½·erfc(−x/√2);  dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
//   tanh:  y = ½x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715x³)   (PyTorch approximate='tanh')
import type { GeluApproximate } from './gelu-kernels.ts';

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
/** Below this |x| the series is used, above it the continued fraction. */
const SERIES_LIMIT = 2.5;

// erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): all terms positive, so no
// cancellation, and it converges for every x (used where it needs < 60 terms).
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

// erfc(x), x > 0: e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from
// the tail; 120 levels are far past convergence for x ≥ 2.5.
function erfcFraction(x: number): number {
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

export function erfRef(x: number): number {
  if (Math.abs(x) < SERIES_LIMIT) return erfSeries(x);
  return Math.sign(x) * (1 - erfcFraction(Math.abs(x)));
}

/** erfc with full relative accuracy in the tail (where 1 − erf would round to 0). */
export function erfcRef(x: number): number {
  if (x >= SERIES_LIMIT) return erfcFraction(x);
  if (x <= -SERIES_LIMIT) return 2 - erfcFraction(-x);
  return 1 - erfSeries(x);
}

const normalCdf = (x: number) => 0.5 * erfcRef(-x / Math.SQRT2);
const normalPdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

const K = Math.sqrt(2 / Math.PI);
const C = 0.044715;

// ½x(1 + tanh u) written as x·σ(2u): equal, but 1 + tanh(u) rounds to 0 for x < −6 even in
// float64, and the tail is what the kernel's relative accuracy is checked on.
export function geluRef(x: number, approximate: GeluApproximate = 'none'): number {
  if (approximate === 'tanh') return x / (1 + Math.exp(-2 * K * (x + C * x * x * x)));
  return x * normalCdf(x);
}

export function geluGradRef(x: number, approximate: GeluApproximate = 'none'): number {
  if (approximate === 'tanh') {
    const t = Math.tanh(K * (x + C * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * C * x * x);
  }
  return normalCdf(x) + x * normalPdf(x);
}

// x: (n) → y: (n)
export function geluForwardRef(x: ArrayLike<number>, approximate: GeluApproximate = 'none'): Float64Array {
  return Float64Array.from(x, (v) => geluRef(v, approximate));
}

// x, dY: (n) → dX: (n)
export function geluBackwardRef(
  x: ArrayLike<number>,
  dY: ArrayLike<number>,
  approximate: GeluApproximate = 'none',
): Float64Array {
  return Float64Array.from(x, (v, i) => dY[i] * geluGradRef(v, approximate));
}
