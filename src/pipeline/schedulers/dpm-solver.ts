// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
// Diffusion Probabilistic Models", Alg. 2: multistep, data prediction) with the semantics of
// diffusers' DPMSolverMultistepScheduler (algorithm_type "dpmsolver++"). Notation: the sample
// is x = α_t·x₀ + σ_t·ε with α_t = 1/√(1+s²), σ_t = s·α_t for the schedule value s = √((1−ᾱ)/ᾱ),
// and λ_t = log(α_t/σ_t) is the half log-SNR the solver integrates over.
import { cpuLatentOps } from './cpu-latent-ops.ts';
import { predictionCoefficients } from './prediction.ts';
import {
  alphasCumprod,
  checkStepCount,
  dpmSolverConfigFromJson,
  dpmSolverTimesteps,
  interpAt,
  trainingSigmas,
} from './schedule.ts';
import type { DpmSolverConfig, LatentOps, Scheduler, StepResult } from './types.ts';

const f32 = Math.fround;

/** α_t, σ_t and λ_t for a schedule value s (s = 0 is the clean end: λ = +∞). */
function alphaSigmaLambda(s: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(s * s + 1);
  const sigma = s * alpha;
  return { alpha, sigma, lambda: Math.log(alpha) - Math.log(sigma) };
}

export class DpmSolverScheduler<T = Float32Array> implements Scheduler<T> {
  readonly name = 'dpmpp-2m' as const;
  readonly config: Readonly<DpmSolverConfig>;
  readonly alphasCumprod: Float64Array;
  readonly trainingSigmas: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  /** Schedule value s = √((1−ᾱ)/ᾱ) at each timestep, then the final one: numInferenceSteps + 1 values. */
  sigmas: readonly number[] = [];
  numInferenceSteps = 0;
  private stepIndex: number | null = null;
  /** x̂₀ of the previous step (the multistep history, order 2). */
  private previousX0: T | null = null;
  /** How many steps have run at reduced order (warm-up of the multistep method). */
  private lowerOrderNums = 0;

  constructor(
    config: DpmSolverConfig = dpmSolverConfigFromJson(),
    private readonly ops: LatentOps<T> = cpuLatentOps as unknown as LatentOps<T>,
  ) {
    this.config = { ...config };
    this.alphasCumprod = alphasCumprod(config);
    this.trainingSigmas = trainingSigmas(this.alphasCumprod);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(numInferenceSteps, this.config);
    this.timesteps = dpmSolverTimesteps(this.config, numInferenceSteps);
    this.numInferenceSteps = this.timesteps.length;
    const last = this.config.finalSigmasType === 'zero' ? 0 : this.trainingSigmas[0];
    this.sigmas = this.timesteps.map((t) => f32(interpAt(this.trainingSigmas, t))).concat(last);
    this.reset();
  }

  /** DPM-Solver works on the variance-preserving sample directly. */
  scaleModelInput(sample: T): T {
    return sample;
  }

  private indexFor(timestep: number): number {
    const hits: number[] = [];
    this.timesteps.forEach((t, i) => t === timestep && hits.push(i));
    // diffusers falls back to the last step for an unknown timestep; that silently samples
    // garbage, so refuse instead.
    if (hits.length === 0) throw new Error(`DPM-Solver: timestep ${timestep} is not in the schedule`);
    return hits.length > 1 ? hits[1] : hits[0];
  }

  step(modelOutput: T, timestep: number, sample: T): StepResult<T> {
    if (this.numInferenceSteps === 0) throw new Error('DPM-Solver: call setTimesteps first');
    if (this.stepIndex === null) this.stepIndex = this.indexFor(timestep);
    const i = this.stepIndex;
    if (this.timesteps[i] !== timestep) {
      throw new Error(`DPM-Solver: expected timestep ${this.timesteps[i]} (step ${i}), got ${timestep}`);
    }
    const ops = this.ops;
    const n = this.timesteps.length;

    // 1. Order of this step: first order to start (no history yet), and on the final step
    //    where diffusers asks for it (lower_order_final with < 15 steps, euler_at_final, or a
    //    final σ of 0, where the second-order correction would divide by an infinite h).
    const lowerOrderFinal =
      i === n - 1 &&
      (this.config.eulerAtFinal || (this.config.lowerOrderFinal && n < 15) || this.config.finalSigmasType === 'zero');
    const firstOrder = this.config.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal;

    // 2. α, σ, λ at the current point s0, the target t and (for order 2) the previous point s1.
    const s0 = alphaSigmaLambda(this.sigmas[i]);
    const tgt = alphaSigmaLambda(this.sigmas[i + 1]);

    // 3. Data prediction x̂₀ = x_θ(x_{s0}, s0) from the network output (DPM-Solver++ integrates
    //    the ODE in x₀ rather than ε, which keeps large guidance scales stable).
    const k = predictionCoefficients(this.config.predictionType, s0.alpha, s0.sigma);
    const x0 = ops.combine([
      [k.x0[0], sample],
      [k.x0[1], modelOutput],
    ]);

    // 4. Step length in log-SNR: h = λ_t − λ_{s0}; φ = e^{−h} − 1 (= −1 when landing on σ_t = 0).
    const h = tgt.lambda - s0.lambda;
    const phi = Math.expm1(-h);
    const sampleCoef = tgt.sigma === 0 ? 0 : tgt.sigma / s0.sigma;

    let prevSample: T;
    if (firstOrder || this.previousX0 === null) {
      // 5a. First order (DDIM in x₀ form): x_t = (σ_t/σ_s0)·x − α_t·φ·x̂₀.
      prevSample = ops.combine([
        [sampleCoef, sample],
        [-tgt.alpha * phi, x0],
      ]);
    } else {
      // 5b. Second order: r₀ = h₀/h with h₀ = λ_{s0} − λ_{s1}; D₀ = x̂₀(s0),
      //     D₁ = (x̂₀(s0) − x̂₀(s1))/r₀, and
      //     midpoint: x_t = (σ_t/σ_s0)·x − α_t·φ·D₀ − ½·α_t·φ·D₁
      //     heun:     x_t = (σ_t/σ_s0)·x − α_t·φ·D₀ + α_t·(φ/h + 1)·D₁
      const s1 = alphaSigmaLambda(this.sigmas[i - 1]);
      const r0 = (s0.lambda - s1.lambda) / h;
      const d1Coef = this.config.solverType === 'midpoint' ? -0.5 * tgt.alpha * phi : tgt.alpha * (phi / h + 1);
      prevSample = ops.combine([
        [sampleCoef, sample],
        [-tgt.alpha * phi + d1Coef / r0, x0],
        [-d1Coef / r0, this.previousX0],
      ]);
    }

    // 6. Keep x̂₀ for the next step (a private copy: the returned one belongs to the caller).
    if (this.previousX0 !== null) ops.release(this.previousX0);
    this.previousX0 = this.config.solverOrder > 1 ? ops.combine([[1, x0]]) : null;
    if (this.lowerOrderNums < this.config.solverOrder) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }

  /** α_t·x₀ + σ_t·ε for a timestep of the current schedule. */
  addNoise(original: T, noise: T, timestep: number): T {
    const { alpha, sigma } = alphaSigmaLambda(this.sigmas[this.indexFor(timestep)]);
    return this.ops.combine([
      [alpha, original],
      [sigma, noise],
    ]);
  }

  reset(): void {
    if (this.previousX0 !== null) this.ops.release(this.previousX0);
    this.previousX0 = null;
    this.lowerOrderNums = 0;
    this.stepIndex = null;
  }
}
