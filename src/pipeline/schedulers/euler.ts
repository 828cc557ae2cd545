// Euler sampler in σ-space (Karras et al. 2022, "Elucidating the Design Space…", Alg. 1 with
// no churn) with the semantics of diffusers' EulerDiscreteScheduler: the sample lives at
// x = x₀ + σ·ε with σ = √((1−ᾱ)/ᾱ); the network sees x/√(σ²+1), its variance-preserving form.
import { cpuLatentOps } from './cpu-latent-ops.ts';
import {
  alphasCumprod,
  checkStepCount,
  eulerConfigFromJson,
  eulerTimesteps,
  interpAt,
  trainingSigmas,
} from './schedule.ts';
import type { EulerConfig, LatentOps, Scheduler, StepResult } from './types.ts';

const f32 = Math.fround;

export class EulerScheduler<T = Float32Array> implements Scheduler<T> {
  readonly name = 'euler' as const;
  readonly config: Readonly<EulerConfig>;
  readonly alphasCumprod: Float64Array;
  /** σ at every training step (float32 values). */
  readonly trainingSigmas: Float64Array;
  timesteps: readonly number[] = [];
  /** σ at each timestep, then the final σ (0 by default): numInferenceSteps + 1 values. */
  sigmas: readonly number[];
  numInferenceSteps = 0;
  private stepIndex: number | null = null;

  constructor(
    config: EulerConfig = eulerConfigFromJson(),
    private readonly ops: LatentOps<T> = cpuLatentOps as unknown as LatentOps<T>,
  ) {
    this.config = { ...config };
    this.alphasCumprod = alphasCumprod(config);
    this.trainingSigmas = trainingSigmas(this.alphasCumprod);
    this.sigmas = [...this.trainingSigmas].reverse().concat(0);
  }

  /** σ_max for "linspace"/"trailing"; √(σ_max² + 1) for "leading", as diffusers defines it. */
  get initNoiseSigma(): number {
    const maxSigma = Math.max(...this.sigmas);
    return this.config.timestepSpacing === 'leading' ? f32(Math.sqrt(maxSigma * maxSigma + 1)) : maxSigma;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(numInferenceSteps, this.config);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = eulerTimesteps(this.config, numInferenceSteps);
    const last = this.config.finalSigmasType === 'zero' ? 0 : this.trainingSigmas[0];
    this.sigmas = this.timesteps.map((t) => f32(interpAt(this.trainingSigmas, t))).concat(last);
    this.stepIndex = null;
  }

  /** Position of `timestep` in the schedule (the second match if it repeats, like diffusers). */
  private indexFor(timestep: number): number {
    const hits: number[] = [];
    this.timesteps.forEach((t, i) => t === timestep && hits.push(i));
    if (hits.length === 0)
      throw new Error(`Euler: timestep ${timestep} is not in the schedule; pass scheduler.timesteps`);
    return hits.length > 1 ? hits[1] : hits[0];
  }

  /** The step counter starts at the first timestep seen and then advances with each step(). */
  private currentIndex(timestep: number): number {
    if (this.numInferenceSteps === 0) throw new Error('Euler: call setTimesteps first');
    if (this.stepIndex === null) this.stepIndex = this.indexFor(timestep);
    if (this.timesteps[this.stepIndex] !== timestep) {
      throw new Error(
        `Euler: expected timestep ${this.timesteps[this.stepIndex]} (step ${this.stepIndex}), got ${timestep}; ` +
          'call step() once per timestep in order',
      );
    }
    return this.stepIndex;
  }

  /** x / √(σ² + 1): the UNet was trained on unit-variance inputs. */
  scaleModelInput(sample: T, timestep: number): T {
    const sigma = this.sigmas[this.currentIndex(timestep)];
    return this.ops.combine([[1 / Math.sqrt(sigma * sigma + 1), sample]]);
  }

  step(modelOutput: T, timestep: number, sample: T): StepResult<T> {
    const i = this.currentIndex(timestep);
    const ops = this.ops;

    // 1. σ_i and σ_{i+1}; without churn σ̂ = σ_i (no noise is re-injected).
    const sigma = this.sigmas[i];
    const sigmaNext = this.sigmas[i + 1];
    const sigmaHat = sigma;

    // 2. x̂₀ from the network output. For v-prediction the network saw c_in·x with
    //    c_in = 1/√(σ²+1): x̂₀ = −σ/√(σ²+1)·v + x/(σ²+1).
    let predX0: T;
    switch (this.config.predictionType) {
      case 'epsilon':
        predX0 = ops.combine([
          [1, sample],
          [-sigmaHat, modelOutput],
        ]);
        break;
      case 'v_prediction':
        predX0 = ops.combine([
          [1 / (sigma * sigma + 1), sample],
          [-sigma / Math.sqrt(sigma * sigma + 1), modelOutput],
        ]);
        break;
      case 'sample':
        predX0 = ops.combine([[1, modelOutput]]);
        break;
      default:
        throw new Error(`Euler: prediction_type "${this.config.predictionType as string}" is not supported`);
    }

    // 3. The ODE's derivative d = dx/dσ = (x − x̂₀)/σ̂.
    // 4. One Euler step of size dt = σ_{i+1} − σ̂:  x_{i+1} = x + d·dt = (1 + dt/σ̂)·x − (dt/σ̂)·x̂₀.
    const ratio = (sigmaNext - sigmaHat) / sigmaHat;
    const prevSample = ops.combine([
      [1 + ratio, sample],
      [-ratio, predX0],
    ]);
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: predX0 };
  }

  /** x₀ + σ(t)·ε for a timestep of the current schedule. */
  addNoise(original: T, noise: T, timestep: number): T {
    const sigma = this.sigmas[this.indexFor(timestep)];
    return this.ops.combine([
      [1, original],
      [sigma, noise],
    ]);
  }

  reset(): void {
    this.stepIndex = null;
  }
}
