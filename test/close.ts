// Numeric comparison with a useful failure message: where the worst element is, what
// both sides hold there, and the tolerance that was asked for.
export interface Tolerance {
  /** Relative tolerance, scaled by max(|expected|) over the whole array (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
}

export interface Difference {
  maxAbs: number;
  index: number;
  scale: number;
}

export function difference(actual: ArrayLike<number>, expected: ArrayLike<number>): Difference {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: actual ${actual.length}, expected ${expected.length}`);
  }
  let maxAbs = 0;
  let index = -1;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxAbs)) {
      // NaN lands here too and is reported.
      maxAbs = Number.isNaN(d) ? Infinity : d;
      index = i;
    }
  }
  return { maxAbs, index, scale };
}

/**
 * Elementwise |a − e| ≤ atol + rtol·max|e|. A scale-relative bound suits GPU kernels
 * whose summation order differs from the reference's.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance = {},
  label = 'values',
): Difference {
  const { rtol = 1e-4, atol = 1e-5 } = tol;
  const d = difference(actual, expected);
  const bound = atol + rtol * d.scale;
  if (!(d.maxAbs <= bound)) {
    throw new Error(
      `${label}: max |Δ| ${d.maxAbs.toExponential(3)} at [${d.index}] ` +
        `(actual ${actual[d.index]}, expected ${expected[d.index]}) > bound ${bound.toExponential(3)} ` +
        `(rtol ${rtol} × scale ${d.scale.toExponential(3)} + atol ${atol})`,
    );
  }
  return d;
}
