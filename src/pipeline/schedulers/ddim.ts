// DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", Eq. 12) with the semantics of
// diffusers' DDIMScheduler: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, steps of T/n training steps, and
// ᾱ after the last step = 1 or ᾱ₀ (set_alpha_to_one).
import { cpuLatentOps } from './cpu-latent-ops.ts';
import { predictionCoefficients } from './prediction.ts';
import { alphasCumprod, checkStepCount, ddimConfigFromJson, ddimTimesteps } from './schedule.ts';
import type { DdimConfig, LatentOps, Scheduler, StepOptions, StepResult } from './types.ts';

export class DdimScheduler<T = Float32Array> implements Scheduler<T> {
  readonly name = 'ddim' as const;
  readonly config: Readonly<DdimConfig>;
  readonly alphasCumprod: Float64Array;
  /** ᾱ used for the step that ends below t = 0. */
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  numInferenceSteps = 0;

  constructor(
    config: DdimConfig = ddimConfigFromJson(),
    private readonly ops: LatentOps<T> = cpuLatentOps as unknown as LatentOps<T>,
  ) {
    this.config = { ...config };
    this.alphasCumprod = alphasCumprod(config);
    this.finalAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(numInferenceSteps, this.config);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = ddimTimesteps(this.config, numInferenceSteps);
  }

  /** DDIM works on the unscaled sample. */
  scaleModelInput(sample: T): T {
    return sample;
  }

  /** ᾱ at an integer training step; below 0 only where `orFinal` (the step past the end). */
  private alphaAt(t: number, orFinal = false): number {
    if (!Number.isInteger(t) || t >= this.config.numTrainTimesteps || (t < 0 && !orFinal)) {
      throw new Error(`DDIM: timestep ${t} is not an integer in [0, ${this.config.numTrainTimesteps})`);
    }
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: T, timestep: number, sample: T, options: StepOptions<T> = {}): StepResult<T> {
    if (this.numInferenceSteps === 0) throw new Error('DDIM: call setTimesteps before step');
    const { eta = 0, noise } = options;
    const ops = this.ops;

    // 1. The previous timestep is a fixed stride below t (negative on the last step).
    const prevTimestep = timestep - Math.floor(this.config.numTrainTimesteps / this.numInferenceSteps);

    // 2. ᾱ_t, ᾱ_prev and β_t = 1 − ᾱ_t; √ᾱ_t and √β_t are the signal and noise scales of x_t.
    const alphaProdT = this.alphaAt(timestep);
    const alphaProdPrev = this.alphaAt(prevTimestep, true);
    const betaProdT = 1 - alphaProdT;

    // 3. x̂₀ and ε̂ from the network output ("predicted x₀" of Eq. 12).
    const k = predictionCoefficients(this.config.predictionType, Math.sqrt(alphaProdT), Math.sqrt(betaProdT));
    let predX0 = ops.combine([
      [k.x0[0], sample],
      [k.x0[1], modelOutput],
    ]);
    const predEps = ops.combine([
      [k.eps[0], sample],
      [k.eps[1], modelOutput],
    ]);

    // 4. Optionally clip x̂₀ (pixel-space models); ε̂ keeps the unclipped value, as in diffusers.
    if (this.config.clipSample) {
      const clipped = ops.clamp(predX0, -this.config.clipSampleRange, this.config.clipSampleRange);
      ops.release(predX0);
      predX0 = clipped;
    }

    // 5. σ_t(η) = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)  (Eq. 16); η = 0 is the ODE sampler.
    const variance = ((1 - alphaProdPrev) / betaProdT) * (1 - alphaProdT / alphaProdPrev);
    const stdDev = eta * Math.sqrt(variance);
    if (eta > 0 && noise === undefined) throw new Error('DDIM: eta > 0 needs `noise` (standard normal)');

    // 6. "Direction pointing to x_t": √(1 − ᾱ_prev − σ_t²)·ε̂.
    const dirCoef = Math.sqrt(1 - alphaProdPrev - stdDev * stdDev);

    // 7. x_prev = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev − σ_t²)·ε̂ + σ_t·z.
    const terms: [number, T][] = [
      [Math.sqrt(alphaProdPrev), predX0],
      [dirCoef, predEps],
    ];
    if (eta > 0) terms.push([stdDev, noise!]);
    const prevSample = ops.combine(terms);
    ops.release(predEps);
    return { prevSample, predOriginalSample: predX0 };
  }

  /** Forward process q(x_t | x₀): √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at an integer training timestep. */
  addNoise(original: T, noise: T, timestep: number): T {
    const a = this.alphaAt(timestep);
    return this.ops.combine([
      [Math.sqrt(a), original],
      [Math.sqrt(1 - a), noise],
    ]);
  }

  /** The v-prediction training target v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀. */
  velocity(original: T, noise: T, timestep: number): T {
    const a = this.alphaAt(timestep);
    return this.ops.combine([
      [Math.sqrt(a), noise],
      [-Math.sqrt(1 - a), original],
    ]);
  }

  reset(): void {}
}
