// CPU reference (plain loops, float64) for GEGLU as in diffusers, after its projection:
// x: (…, 2F) splits into hidden = x[…, :F] and gate = x[…, F:];  y = hidden · gelu(gate).
//   ∂y/∂hidden = gelu(gate),  ∂y/∂gate = hidden · gelu'(gate)
import type { GeluApproximate } from '../gelu/gelu-kernels.ts';
import { geluGradRef, geluRef } from '../gelu/gelu-reference.ts';

// x: (rows, 2F) → y: (rows, F)
export function gegluForwardRef(x: ArrayLike<number>, f: number, approximate: GeluApproximate = 'none'): Float64Array {
  const rows = x.length / (2 * f);
  const y = new Float64Array(rows * f);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) y[r * f + j] = x[r * 2 * f + j] * geluRef(x[r * 2 * f + f + j], approximate);
  }
  return y;
}

// x: (rows, 2F), dY: (rows, F) → dX: (rows, 2F)
export function gegluBackwardRef(
  x: ArrayLike<number>,
  dY: ArrayLike<number>,
  f: number,
  approximate: GeluApproximate = 'none',
): Float64Array {
  const rows = x.length / (2 * f);
  const dX = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) {
      const h = x[r * 2 * f + j];
      const g = x[r * 2 * f + f + j];
      const d = dY[r * f + j];
      dX[r * 2 * f + j] = d * geluRef(g, approximate);
      dX[r * 2 * f + f + j] = d * h * geluGradRef(g, approximate);
    }
  }
  return dX;
}
