// The training target for each prediction type against its formula, and against the
// samplers' inverse: the x̂₀ / ε̂ a sampler reads from a perfect prediction of the target
// must be the x₀ and ε that made z_t (so tuning and sampling agree on what v means).
import { describe, expect, it } from 'vitest';
import { diffusionTarget, predictionCoefficients } from './prediction.ts';
import type { PredictionType } from './types.ts';

const ops = {
  add: (a: number[], b: number[]) => a.map((v, i) => v + b[i]),
  sub: (a: number[], b: number[]) => a.map((v, i) => v - b[i]),
  mul: (a: number[], b: number[]) => a.map((v, i) => v * b[i]),
};

describe('diffusion training target', () => {
  // two samples at different timesteps (ᾱ = 0.9, 0.02), two values each
  const abar = [0.9, 0.9, 0.02, 0.02];
  const alpha = abar.map(Math.sqrt);
  const sigma = abar.map((a) => Math.sqrt(1 - a));
  const x0 = [0.3, -1.2, 0.8, 0.05];
  const eps = [1.1, -0.4, -2.0, 0.7];
  const zt = x0.map((x, i) => alpha[i] * x + sigma[i] * eps[i]);

  it('is ε, v = √ᾱ·ε − √(1−ᾱ)·x₀, or x₀ (float64, exact formula)', () => {
    expect(diffusionTarget(ops, 'epsilon', x0, eps, alpha, sigma)).toEqual(eps);
    expect(diffusionTarget(ops, 'sample', x0, eps, alpha, sigma)).toEqual(x0);
    const v = diffusionTarget(ops, 'v_prediction', x0, eps, alpha, sigma);
    v.forEach((x, i) => expect(x).toBeCloseTo(Math.sqrt(abar[i]) * eps[i] - Math.sqrt(1 - abar[i]) * x0[i], 14));
  });

  for (const type of ['epsilon', 'v_prediction', 'sample'] as PredictionType[]) {
    it(`${type}: the samplers' conversion of a perfect prediction gives back x₀ and ε`, () => {
      const target = diffusionTarget(ops, type, x0, eps, alpha, sigma);
      target.forEach((m, i) => {
        const c = predictionCoefficients(type, alpha[i], sigma[i]);
        expect(c.x0[0] * zt[i] + c.x0[1] * m).toBeCloseTo(x0[i], 12);
        expect(c.eps[0] * zt[i] + c.eps[1] * m).toBeCloseTo(eps[i], 12);
      });
    });
  }
});
