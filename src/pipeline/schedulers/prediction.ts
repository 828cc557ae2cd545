// What the network predicts, turned into x̂₀ and ε̂. For a sample x = α·x₀ + σ·ε (α² + σ² = 1
// in the variance-preserving form DDIM and DPM-Solver use) every conversion is linear in
// (x, model output), so it is returned as coefficients: x̂₀ = a·x + b·m, ε̂ = c·x + d·m.
import type { PredictionType } from './types.ts';

export interface PredictionCoefficients {
  x0: readonly [sampleCoef: number, outputCoef: number];
  eps: readonly [sampleCoef: number, outputCoef: number];
}

export function predictionCoefficients(type: PredictionType, alpha: number, sigma: number): PredictionCoefficients {
  switch (type) {
    case 'epsilon':
      // x̂₀ = (x − σ·ε̂)/α
      return { x0: [1 / alpha, -sigma / alpha], eps: [0, 1] };
    case 'v_prediction':
      // v = α·ε − σ·x₀  ⇒  x̂₀ = α·x − σ·v, ε̂ = σ·x + α·v
      return { x0: [alpha, -sigma], eps: [sigma, alpha] };
    case 'sample':
      // ε̂ = (x − α·x̂₀)/σ
      return { x0: [0, 1], eps: [1 / sigma, -alpha / sigma] };
    default:
      throw new Error(`prediction_type "${type as string}" is not supported`);
  }
}

/**
 * What the network is trained to output at z_t = α·x₀ + σ·ε (α = √ᾱ_t, σ = √(1−ᾱ_t)), as
 * diffusers' training scripts take it from the scheduler config: ε for "epsilon",
 * v = α·ε − σ·x₀ for "v_prediction" (SD 2.x 768), x₀ for "sample". `alpha` / `sigma` are
 * per-sample factors shaped like the latents, so a batch may mix timesteps.
 */
export function diffusionTarget<T>(
  ops: { add(a: T, b: T): T; mul(a: T, b: T): T; sub(a: T, b: T): T },
  type: PredictionType,
  x0: T,
  eps: T,
  alpha: T,
  sigma: T,
): T {
  switch (type) {
    case 'epsilon':
      return eps;
    case 'v_prediction':
      return ops.sub(ops.mul(alpha, eps), ops.mul(sigma, x0));
    case 'sample':
      return x0;
    default:
      throw new Error(`prediction_type "${type as string}" is not supported`);
  }
}
