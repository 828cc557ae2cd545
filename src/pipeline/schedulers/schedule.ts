// The noise schedule and timestep grids shared by the samplers, reproducing diffusers'
// numbers: β and ᾱ are rounded to float32 exactly where torch holds them as float32 (so ᾱ
// matches diffusers to ≤ 1 ulp), and the grids use numpy's half-to-even rounding.
import type {
  BetaSchedule,
  DdimConfig,
  DpmSolverConfig,
  EulerConfig,
  NoiseScheduleConfig,
  PredictionType,
  TimestepSpacing,
} from './types.ts';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, n, dtype=float32) on the CPU: float32 step, the first half
 * counted up from `start` and the second half down from `end`.
 */
function torchLinspaceF32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f32(s + f32(step * i)) : f32(e - f32(step * (n - i - 1)));
  return out;
}

/** β_t for t = 0 … N−1 (float32 values). */
export function betas(config: NoiseScheduleConfig): Float64Array {
  const n = config.numTrainTimesteps;
  if (config.trainedBetas) {
    if (config.trainedBetas.length !== n) {
      throw new Error(`trained_betas has ${config.trainedBetas.length} values, num_train_timesteps is ${n}`);
    }
    return Float64Array.from(config.trainedBetas, (b) => f32(b));
  }
  switch (config.betaSchedule) {
    case 'linear':
      return torchLinspaceF32(config.betaStart, config.betaEnd, n);
    case 'scaled_linear':
      // Linear in √β (Stable Diffusion's schedule); Python's ** 0.5 runs in double.
      return torchLinspaceF32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n).map((r) => f32(r * r));
    default:
      throw new Error(`beta_schedule "${config.betaSchedule as string}" is not supported (linear, scaled_linear)`);
  }
}

/**
 * ᾱ_t = Π_{s≤t} (1 − β_s). torch's CPU cumprod of a float32 tensor accumulates in double
 * and rounds each output to float32; 1 − β is a float32 op.
 */
export function alphasCumprod(config: NoiseScheduleConfig): Float64Array {
  const b = betas(config);
  const out = new Float64Array(b.length);
  let acc = 1;
  for (let t = 0; t < b.length; t++) {
    acc *= f32(1 - b[t]);
    out[t] = f32(acc);
  }
  return out;
}

/** σ_t = √((1 − ᾱ_t)/ᾱ_t) for every training step, each op in float32 as torch does it. */
export function trainingSigmas(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.arange(start, stop, step) for a negative step: start + i·step while > stop. */
function arangeDown(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: n }, (_, i) => start + i * step);
}

/** np.linspace(a, b, n) in double (endpoint exact). */
function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? b : a + i * step));
}

/**
 * The integer timestep grid of DDIMScheduler.set_timesteps (and of the other samplers for
 * "leading"/"trailing"), highest first.
 */
export function ddimTimesteps(config: NoiseScheduleConfig, n: number): number[] {
  const N = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return linspace(0, N - 1, n)
        .map(roundHalfEven)
        .reverse();
    case 'leading': {
      const ratio = Math.floor(N / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return arangeDown(N, 0, -N / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(`timestep_spacing "${config.timestepSpacing as string}" is not supported`);
  }
}

/** EulerDiscreteScheduler.set_timesteps' grid: float32 values (linspace is not rounded). */
export function eulerTimesteps(config: NoiseScheduleConfig, n: number): number[] {
  const N = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return linspace(0, N - 1, n)
        .map((t) => f32(t))
        .reverse();
    case 'leading': {
      const ratio = Math.floor(N / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return arangeDown(N, 0, -N / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(`timestep_spacing "${config.timestepSpacing as string}" is not supported`);
  }
}

/**
 * DPMSolverMultistepScheduler.set_timesteps' grid: n+1 points of which the last (t = 0 end)
 * is dropped, so the first step starts at the top without landing on t = 0 before the end.
 */
export function dpmSolverTimesteps(config: NoiseScheduleConfig, n: number): number[] {
  const N = config.numTrainTimesteps; // lambda_min_clipped = −∞ leaves the whole range
  switch (config.timestepSpacing) {
    case 'linspace':
      return linspace(0, N - 1, n + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, n);
    case 'leading': {
      const ratio = Math.floor(N / (n + 1));
      return Array.from({ length: n }, (_, i) => (n - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return arangeDown(N, 0, -N / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(`timestep_spacing "${config.timestepSpacing as string}" is not supported`);
  }
}

/** np.interp(t, arange(len), values): linear between integer training steps, clamped at the ends. */
export function interpAt(values: Float64Array, t: number): number {
  if (t <= 0) return values[0];
  const last = values.length - 1;
  if (t >= last) return values[last];
  const j = Math.floor(t);
  const w = t - j;
  return w === 0 ? values[j] : (values[j + 1] - values[j]) * w + values[j];
}

export function checkStepCount(n: number, config: NoiseScheduleConfig): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`number of inference steps must be a positive integer, got ${n}`);
  if (n > config.numTrainTimesteps) {
    throw new Error(`number of inference steps ${n} exceeds num_train_timesteps ${config.numTrainTimesteps}`);
  }
}

// ---------------------------------------------------------------------------------------
// Configs: each diffusers class has its own defaults; a pack's scheduler_config.json (a
// DDIMScheduler config for SD) overrides them, as `Scheduler.from_config` does.

const BASE_DEFAULTS: NoiseScheduleConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  trainedBetas: null,
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  stepsOffset: 0,
};

export const DDIM_DEFAULTS: DdimConfig = {
  ...BASE_DEFAULTS,
  setAlphaToOne: true,
  clipSample: true,
  clipSampleRange: 1,
};

export const EULER_DEFAULTS: EulerConfig = { ...BASE_DEFAULTS, timestepSpacing: 'linspace', finalSigmasType: 'zero' };

export const DPM_SOLVER_DEFAULTS: DpmSolverConfig = {
  ...BASE_DEFAULTS,
  timestepSpacing: 'linspace',
  solverOrder: 2,
  solverType: 'midpoint',
  lowerOrderFinal: true,
  eulerAtFinal: false,
  finalSigmasType: 'zero',
};

type Json = Record<string, unknown>;

function pick<T>(json: Json, key: string, fallback: T, check: (v: unknown) => boolean, what: string): T {
  const v = json[key];
  if (v === undefined || v === null) return fallback;
  if (!check(v)) throw new Error(`scheduler config: ${key} must be ${what}, got ${JSON.stringify(v)}`);
  return v as T;
}

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown) => Number.isInteger(v);
const isBool = (v: unknown) => typeof v === 'boolean';
const oneOf =
  (...options: unknown[]) =>
  (v: unknown) =>
    options.includes(v);

/** Options diffusers offers that these samplers do not implement: refuse rather than sample wrongly. */
function rejectUnsupported(json: Json, rules: [key: string, ok: (v: unknown) => boolean, hint: string][]): void {
  for (const [key, ok, hint] of rules) {
    const v = json[key];
    if (v !== undefined && v !== null && !ok(v)) {
      throw new Error(`scheduler config: ${key} = ${JSON.stringify(v)} is not supported (${hint})`);
    }
  }
}

function baseFromJson(json: Json, d: NoiseScheduleConfig): NoiseScheduleConfig {
  rejectUnsupported(json, [
    ['thresholding', (v) => v === false, 'dynamic thresholding is for pixel-space models'],
    ['rescale_betas_zero_snr', (v) => v === false, 'zero-terminal-SNR schedules are not implemented'],
    ['use_karras_sigmas', (v) => v === false, 'Karras sigmas are not implemented'],
    ['use_exponential_sigmas', (v) => v === false, 'exponential sigmas are not implemented'],
    ['use_beta_sigmas', (v) => v === false, 'beta sigmas are not implemented'],
    ['use_lu_lambdas', (v) => v === false, 'Lu lambdas are not implemented'],
    ['use_flow_sigmas', (v) => v === false, 'flow-matching sigmas are not implemented'],
    ['timestep_type', (v) => v === 'discrete', 'continuous timesteps are not implemented'],
    ['interpolation_type', (v) => v === 'linear', 'only linear σ interpolation is implemented'],
    ['variance_type', () => false, 'learned variance is not implemented'],
  ]);
  const trained = json.trained_betas;
  if (trained !== undefined && trained !== null && !(Array.isArray(trained) && trained.every(isNum))) {
    throw new Error('scheduler config: trained_betas must be an array of numbers');
  }
  const config: NoiseScheduleConfig = {
    numTrainTimesteps: pick(
      json,
      'num_train_timesteps',
      d.numTrainTimesteps,
      (v) => isInt(v) && (v as number) > 1,
      'an integer > 1',
    ),
    betaStart: pick(json, 'beta_start', d.betaStart, isNum, 'a number'),
    betaEnd: pick(json, 'beta_end', d.betaEnd, isNum, 'a number'),
    betaSchedule: pick<BetaSchedule>(
      json,
      'beta_schedule',
      d.betaSchedule,
      oneOf('linear', 'scaled_linear'),
      '"linear" or "scaled_linear"',
    ),
    trainedBetas: (trained as number[] | null | undefined) ?? null,
    predictionType: pick<PredictionType>(
      json,
      'prediction_type',
      d.predictionType,
      oneOf('epsilon', 'v_prediction', 'sample'),
      '"epsilon", "v_prediction" or "sample"',
    ),
    timestepSpacing: pick<TimestepSpacing>(
      json,
      'timestep_spacing',
      d.timestepSpacing,
      oneOf('leading', 'trailing', 'linspace'),
      '"leading", "trailing" or "linspace"',
    ),
    stepsOffset: pick(
      json,
      'steps_offset',
      d.stepsOffset,
      (v) => isInt(v) && (v as number) >= 0,
      'a non-negative integer',
    ),
  };
  return config;
}

/** Reads a diffusers scheduler_config.json (snake_case) for the given sampler. */
export function ddimConfigFromJson(json: Json = {}): DdimConfig {
  return {
    ...baseFromJson(json, DDIM_DEFAULTS),
    setAlphaToOne: pick(json, 'set_alpha_to_one', DDIM_DEFAULTS.setAlphaToOne, isBool, 'a boolean'),
    clipSample: pick(json, 'clip_sample', DDIM_DEFAULTS.clipSample, isBool, 'a boolean'),
    clipSampleRange: pick(json, 'clip_sample_range', DDIM_DEFAULTS.clipSampleRange, isNum, 'a number'),
  };
}

export function eulerConfigFromJson(json: Json = {}): EulerConfig {
  return {
    ...baseFromJson(json, EULER_DEFAULTS),
    finalSigmasType: pick(
      json,
      'final_sigmas_type',
      EULER_DEFAULTS.finalSigmasType,
      oneOf('zero', 'sigma_min'),
      '"zero" or "sigma_min"',
    ),
  };
}

export function dpmSolverConfigFromJson(json: Json = {}): DpmSolverConfig {
  rejectUnsupported(json, [
    ['algorithm_type', (v) => v === 'dpmsolver++', 'only "dpmsolver++" (data prediction, ODE) is implemented'],
    ['solver_order', oneOf(1, 2), 'orders 1 and 2 are implemented'],
    ['lambda_min_clipped', (v) => v === -Infinity, 'λ clipping is not implemented'],
  ]);
  const d = DPM_SOLVER_DEFAULTS;
  return {
    ...baseFromJson(json, d),
    solverOrder: pick(json, 'solver_order', d.solverOrder, oneOf(1, 2), '1 or 2'),
    solverType: pick(json, 'solver_type', d.solverType, oneOf('midpoint', 'heun'), '"midpoint" or "heun"'),
    lowerOrderFinal: pick(json, 'lower_order_final', d.lowerOrderFinal, isBool, 'a boolean'),
    eulerAtFinal: pick(json, 'euler_at_final', d.eulerAtFinal, isBool, 'a boolean'),
    finalSigmasType: pick(
      json,
      'final_sigmas_type',
      d.finalSigmasType,
      oneOf('zero', 'sigma_min'),
      '"zero" or "sigma_min"',
    ),
  };
}

export { isSamplerName } from '../../domain/samplers.ts';
