// Central finite differences of a CPU reference, in float64. The loss is L = Σ dY·f(X)
// for a fixed random dY, so one check covers the whole Jacobian-vector product that a
// backward kernel computes: ∂L/∂x_i ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h.
import { assertClose } from './close.ts';
import { rng } from './random.ts';

export interface GradcheckOptions {
  h?: number;
  rtol?: number;
  atol?: number;
  /** Check at most this many coordinates per input (chosen at random); default all. */
  samples?: number;
  seed?: number;
}

/**
 * @param forward  inputs ↦ output (any shape, flattened)
 * @param backward (inputs, dY) ↦ one gradient per input (the analytic reference)
 * @param inputs   float64 inputs; they are perturbed in place and restored
 */
export function gradcheck(
  forward: (xs: Float64Array[]) => ArrayLike<number>,
  backward: (xs: Float64Array[], dY: Float64Array) => ArrayLike<number>[],
  inputs: Float64Array[],
  options: GradcheckOptions = {},
): void {
  const { h = 1e-6, rtol = 1e-5, atol = 1e-7, samples = Infinity, seed = 7 } = options;
  const r = rng(seed);
  const y0 = forward(inputs);
  const dY = Float64Array.from({ length: y0.length }, () => r.normal());
  const loss = () => {
    const y = forward(inputs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dY[i];
    return s;
  };
  const analytic = backward(inputs, dY);
  if (analytic.length !== inputs.length) throw new Error('backward must return one gradient per input');
  inputs.forEach((x, k) => {
    const idx =
      x.length <= samples
        ? Array.from({ length: x.length }, (_, i) => i)
        : Array.from({ length: samples }, () => r.int(0, x.length - 1));
    const numeric = new Float64Array(idx.length);
    const picked = new Float64Array(idx.length);
    idx.forEach((i, j) => {
      const old = x[i];
      x[i] = old + h;
      const lp = loss();
      x[i] = old - h;
      const lm = loss();
      x[i] = old;
      numeric[j] = (lp - lm) / (2 * h);
      picked[j] = analytic[k][i];
    });
    assertClose(picked, numeric, { rtol, atol }, `gradient of input ${k} vs finite differences`);
  });
}

export const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);
