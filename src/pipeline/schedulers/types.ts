// Shared types of the samplers. Schedulers do their per-step bookkeeping on scalars
// (ᾱ, σ, λ, step sizes) and touch latents only through `LatentOps`, so the same scheduler
// object can drive CPU Float32Arrays today and GPU tensors later.

export type BetaSchedule = 'linear' | 'scaled_linear';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
import type { SamplerName } from '../../domain/samplers.ts';

export type { SamplerName };

/** The options all three samplers share, with diffusers' meaning (camelCase of its config keys). */
export interface NoiseScheduleConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  /** Explicit β per training step; overrides betaStart/betaEnd/betaSchedule. */
  trainedBetas: readonly number[] | null;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
}

export interface DdimConfig extends NoiseScheduleConfig {
  /** ᾱ used after the last step: 1 if true, else ᾱ₀ (SD uses false). */
  setAlphaToOne: boolean;
  clipSample: boolean;
  clipSampleRange: number;
}

export interface EulerConfig extends NoiseScheduleConfig {
  /** Last σ appended to the schedule: 0, or σ at training step 0. */
  finalSigmasType: 'zero' | 'sigma_min';
}

export interface DpmSolverConfig extends NoiseScheduleConfig {
  solverOrder: 1 | 2;
  solverType: 'midpoint' | 'heun';
  /** Fall back to first order on the final step when fewer than 15 steps are run. */
  lowerOrderFinal: boolean;
  eulerAtFinal: boolean;
  finalSigmasType: 'zero' | 'sigma_min';
}

/**
 * Elementwise maths on latents. The CPU implementation works on Float32Array; a GPU one
 * would wrap engine tensors. Every returned value is new and owned by the caller.
 */
export interface LatentOps<T> {
  /** Σᵢ cᵢ·xᵢ (all xᵢ of one shape). */
  combine(terms: ReadonlyArray<readonly [number, T]>): T;
  /** min(max(x, lo), hi). */
  clamp(x: T, lo: number, hi: number): T;
  /** Frees a latent the scheduler no longer needs (GPU buffers); a no-op on the CPU. */
  release(x: T): void;
}

export interface StepResult<T> {
  /** The latent for the next (less noisy) timestep. */
  prevSample: T;
  /** The model's current estimate of the clean latent x̂₀ (for progressive previews). */
  predOriginalSample: T;
}

export interface StepOptions<T> {
  /** DDIM only: η of the DDIM paper (0 = deterministic); needs `noise` when > 0. */
  eta?: number;
  /** DDIM only: standard-normal noise z for η > 0 (use the seeded generator in random.ts). */
  noise?: T;
}

/**
 * A diffusion sampler with diffusers' call pattern:
 * ```
 * s.setTimesteps(n); let x = initialNoise × s.initNoiseSigma;
 * for (const t of s.timesteps) x = s.step(unet(s.scaleModelInput(x, t), t), t, x).prevSample;
 * ```
 * `scaleModelInput` may return `sample` itself when no scaling applies. Outputs of `step`
 * and `addNoise` are new values owned by the caller; inputs are never modified.
 */
export interface Scheduler<T = Float32Array> {
  readonly name: SamplerName;
  readonly config: Readonly<NoiseScheduleConfig>;
  /** ᾱ_t for t = 0 … numTrainTimesteps−1 (float32 values, as diffusers holds them). */
  readonly alphasCumprod: Float64Array;
  /** The timesteps to feed the UNet, highest first; empty until setTimesteps. */
  readonly timesteps: readonly number[];
  readonly numInferenceSteps: number;
  /** Standard deviation of the initial noise the sampler expects. */
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  scaleModelInput(sample: T, timestep: number): T;
  step(modelOutput: T, timestep: number, sample: T, options?: StepOptions<T>): StepResult<T>;
  /** Noises a clean latent to `timestep` of the current schedule the way this sampler expects (img2img). */
  addNoise(original: T, noise: T, timestep: number): T;
  /** Drops any multistep history (releasing it through LatentOps). */
  reset(): void;
}
