// A model's scheduler_config.json, checked and normalised for a pack before any weight is
// converted. SD checkpoints ship configs of seven diffusers classes; the pack's samplers
// (DDIM, Euler, DPM-Solver++ 2M) each read the pack's config the way
// `XScheduler.from_config(config)` does in diffusers: the keys present override the
// sampler's own defaults, absent keys take them. So the pack keeps exactly the keys the
// source states, plus explicit values for the keys every class defaults alike (betas,
// num_train_timesteps, prediction_type, steps_offset). Class-specific defaults —
// notably timestep_spacing, 'leading' for DDIM/PNDM/DDPM but 'linspace' for Euler, LMS and
// DPM-Solver — stay absent, so e.g. SD 1.5's PNDM config gives DDIM 961, 921, … and
// Euler 999, 957.375, … at 25 steps, as in diffusers.
//
// Options that change the schedule and that the samplers do not implement (Karras or
// exponential sigmas, zero-terminal-SNR, thresholding, a cosine β schedule) are refused
// with the reason; options that only pick a solver variant the pack does not offer
// (PNDM's PRK steps, DDPM's variance type, a stochastic DPM-Solver) are dropped and named.
import { createScheduler } from '../pipeline/schedulers/index.ts';
import { SAMPLERS } from '../domain/samplers.ts';
import { Checker } from '../domain/json-checker.ts';
import { checkSchedulerConfig, type SchedulerConfig } from './manifest.ts';

export const SCHEDULER_CLASSES = [
  'PNDMScheduler',
  'DDIMScheduler',
  'LMSDiscreteScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DPMSolverMultistepScheduler',
  'DDPMScheduler',
] as const;
export type SchedulerClass = (typeof SCHEDULER_CLASSES)[number];

/** Each class's default timestep_spacing (diffusers): what a config without the key gets. */
export const CLASS_TIMESTEP_SPACING: Record<SchedulerClass, 'leading' | 'linspace'> = {
  PNDMScheduler: 'leading',
  DDIMScheduler: 'leading',
  DDPMScheduler: 'leading',
  LMSDiscreteScheduler: 'linspace',
  EulerDiscreteScheduler: 'linspace',
  EulerAncestralDiscreteScheduler: 'linspace',
  DPMSolverMultistepScheduler: 'linspace',
};

/** Defaults shared by all seven classes' constructors (diffusers). */
const SHARED_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  steps_offset: 0,
} as const;

/** Keys the pack's samplers read beyond the shared ones, kept only when the source has them. */
const KEPT_IF_PRESENT = [
  'timestep_spacing',
  'set_alpha_to_one',
  'clip_sample',
  'clip_sample_range',
  'final_sigmas_type',
  'solver_order',
  'solver_type',
  'lower_order_final',
  'euler_at_final',
] as const;

/** key → [value that is harmless, why any other value is refused]. */
const REFUSED: [key: string, harmless: (v: unknown) => boolean, why: string][] = [
  ['use_karras_sigmas', (v) => v === false, 'Karras sigmas are not implemented by the pack samplers'],
  ['use_exponential_sigmas', (v) => v === false, 'exponential sigmas are not implemented'],
  ['use_beta_sigmas', (v) => v === false, 'beta sigmas are not implemented'],
  ['use_lu_lambdas', (v) => v === false, 'Lu lambdas are not implemented'],
  ['use_flow_sigmas', (v) => v === false, 'flow-matching sigmas are not implemented'],
  ['rescale_betas_zero_snr', (v) => v === false, 'zero-terminal-SNR schedules are not implemented'],
  ['thresholding', (v) => v === false, 'dynamic thresholding is not implemented (it is for pixel-space models)'],
  ['timestep_type', (v) => v === 'discrete', 'continuous timesteps are not implemented'],
  ['interpolation_type', (v) => v === 'linear', 'only linear σ interpolation is implemented'],
  ['sigma_min', () => false, 'custom σ ranges are not implemented'],
  ['sigma_max', () => false, 'custom σ ranges are not implemented'],
  ['lambda_min_clipped', (v) => v === -Infinity, 'λ clipping is not implemented'],
  [
    'beta_schedule',
    (v) => v === 'linear' || v === 'scaled_linear',
    'only linear and scaled_linear β schedules are implemented',
  ],
];

/** Source keys that only choose a solver variant the pack does not offer: key → why dropping is safe. */
const DROPPED: Record<string, string> = {
  skip_prk_steps: 'PNDM-only (the pack samples with DDIM, Euler or DPM-Solver++ 2M)',
  variance_type: 'DDPM/DPM-Solver ancestral variance (the pack samplers are deterministic)',
  algorithm_type: 'DPM-Solver variant (the pack offers dpmsolver++)',
};

export interface NormalisedScheduler {
  config: SchedulerConfig;
  sourceClass: SchedulerClass;
  /** Source keys left out of the pack's config, each with why (for the build log). */
  dropped: string[];
}

/**
 * Checks a diffusers scheduler_config.json and returns the pack's version of it; throws one
 * error listing every problem. `where` names the file in messages.
 */
export function normaliseSchedulerConfig(
  json: Record<string, unknown>,
  where = 'scheduler_config.json',
): NormalisedScheduler {
  const problems: string[] = [];
  const cls = json._class_name;
  if (typeof cls !== 'string' || !(SCHEDULER_CLASSES as readonly string[]).includes(cls)) {
    throw new Error(
      `${where}: _class_name ${JSON.stringify(cls)} is not a scheduler this builder maps; supported: ${SCHEDULER_CLASSES.join(', ')} (pass --scheduler <scheduler_config.json> to use another config)`,
    );
  }
  for (const [key, harmless, why] of REFUSED) {
    const v = json[key];
    // null is diffusers' "not set" for every one of these keys.
    if (v !== undefined && v !== null && !harmless(v)) {
      problems.push(`${key} = ${JSON.stringify(v)}: ${why}`);
    }
  }
  const out: Record<string, unknown> = { _class_name: cls };
  if (typeof json._diffusers_version === 'string') out._diffusers_version = json._diffusers_version;
  for (const [key, fallback] of Object.entries(SHARED_DEFAULTS)) {
    const v = json[key];
    out[key] = v === undefined || (v === null && key !== 'trained_betas') ? fallback : v;
  }
  // The values themselves: by the same check the pack's manifest gets.
  const c = new Checker();
  checkSchedulerConfig(c, out, '');
  for (const i of c.issues) problems.push(`${i.path}: ${i.message}`);
  const dropped: string[] = [];
  for (const key of KEPT_IF_PRESENT) {
    if (json[key] === undefined || json[key] === null) continue;
    if (key === 'solver_order' && json[key] !== 1 && json[key] !== 2) {
      dropped.push(`solver_order = ${JSON.stringify(json[key])} (the pack's DPM-Solver++ is 2nd order)`);
      continue;
    }
    out[key] = json[key];
  }
  for (const [key, why] of Object.entries(DROPPED)) {
    if (json[key] === undefined || json[key] === null) continue;
    if (key === 'algorithm_type' && json[key] === 'dpmsolver++') continue;
    dropped.push(`${key} = ${JSON.stringify(json[key])} (${why})`);
  }
  if (problems.length)
    throw new Error(`${where} (${cls}) cannot be mapped to the pack's samplers:\n  - ${problems.join('\n  - ')}`);

  // Every sampler must accept it now, not at the first generation.
  for (const name of SAMPLERS) {
    try {
      createScheduler(name, out).setTimesteps(25);
    } catch (e) {
      throw new Error(`${where} (${cls}): the ${name} sampler refuses it: ${(e as Error).message}`, { cause: e });
    }
  }
  // Typed by the check above.
  return { config: out as SchedulerConfig, sourceClass: cls as SchedulerClass, dropped };
}
