// The builder's scheduler mapping against diffusers' own numbers: for the published SD 1.5,
// 2.1 and 2.1-base scheduler configs, DDIMScheduler.from_config(cfg) and
// EulerDiscreteScheduler.from_config(cfg) computed by diffusers
// (../shared/data/reference/single-file/schedulers/*.timesteps.json) must equal what the
// pack's ddim and euler samplers compute from the normalised config.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SAMPLERS } from '../domain/samplers.ts';
import { createScheduler, DdimScheduler, EulerScheduler } from '../pipeline/schedulers/index.ts';
import { parsePythonJson } from './pack-io.ts';
import { CLASS_TIMESTEP_SPACING, normaliseSchedulerConfig, SCHEDULER_CLASSES } from './source-scheduler.ts';

const DIR = new URL('../../../shared/data/reference/single-file/schedulers/', import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, DIR), 'utf8'));

interface StepGolden {
  timesteps: number[];
  alphas_cumprod_at_timesteps: number[];
  alphas_cumprod_prev?: number[];
  final_alpha_cumprod?: number;
  sigmas?: number[];
  init_noise_sigma: number;
}
/** Per scheduler class: the resolved config and, under `steps_<n>`, the numbers for n steps. */
type ClassGolden = { resolved_config: Record<string, unknown> } & Record<`steps_${number}`, StepGolden>;
interface Golden {
  DDIMScheduler: ClassGolden;
  EulerDiscreteScheduler: ClassGolden;
  alphas_cumprod_all_1000: number[];
}

/** The step counts a golden records (its `steps_<n>` keys). */
const stepCounts = (c: ClassGolden): number[] =>
  Object.keys(c).flatMap((k) => (/^steps_\d+$/.test(k) ? [Number(k.slice('steps_'.length))] : []));

const REPOS = [
  'runwayml--stable-diffusion-v1-5',
  'stabilityai--stable-diffusion-2-1',
  'stabilityai--stable-diffusion-2-1-base',
];

/** |a − b| ≤ rel·|b| elementwise (float32 values: rel 2e-7 is ≤ 1–2 ulp). */
function expectClose(a: readonly number[], b: readonly number[], rel: number, what: string) {
  expect(a.length, `${what} length`).toBe(b.length);
  a.forEach((x, i) =>
    expect(Math.abs(x - b[i]), `${what}[${i}]: ${x} vs ${b[i]}`).toBeLessThanOrEqual(rel * Math.abs(b[i])),
  );
}

function checkAgainstDiffusers(config: Record<string, unknown>, g: Golden, what: string) {
  const counts = stepCounts(g.DDIMScheduler);
  expect(counts.length, `${what}: step counts in the golden`).toBeGreaterThan(0);
  expect(stepCounts(g.EulerDiscreteScheduler)).toEqual(counts);
  for (const n of counts) {
    const dg = g.DDIMScheduler[`steps_${n}`];
    const ddim = createScheduler('ddim', config) as DdimScheduler;
    ddim.setTimesteps(n);
    expect(ddim.timesteps, `${what} ddim ${n} timesteps`).toEqual(dg.timesteps);
    expectClose(
      dg.timesteps.map((t) => ddim.alphasCumprod[t]),
      dg.alphas_cumprod_at_timesteps,
      2e-7,
      `${what} ddim ᾱ`,
    );
    expect(ddim.finalAlphaCumprod).toBeCloseTo(dg.final_alpha_cumprod!, 7);
    expect(ddim.config.predictionType).toBe(g.DDIMScheduler.resolved_config.prediction_type);
    expect(ddim.config.timestepSpacing).toBe(g.DDIMScheduler.resolved_config.timestep_spacing);

    const eg = g.EulerDiscreteScheduler[`steps_${n}`];
    const euler = createScheduler('euler', config) as EulerScheduler;
    euler.setTimesteps(n);
    expectClose(euler.timesteps, eg.timesteps, 1e-7, `${what} euler ${n} timesteps`);
    expectClose(euler.sigmas, eg.sigmas!, 2e-7, `${what} euler ${n} sigmas`);
    expect(Math.abs(euler.initNoiseSigma - eg.init_noise_sigma)).toBeLessThan(1e-5 * eg.init_noise_sigma);
    expect(euler.config.timestepSpacing).toBe(g.EulerDiscreteScheduler.resolved_config.timestep_spacing);
  }
  expectClose(
    Array.from(createScheduler('ddim', config).alphasCumprod),
    g.alphas_cumprod_all_1000,
    2e-7,
    `${what} ᾱ all`,
  );
}

describe('scheduler configs → pack samplers, against diffusers', () => {
  for (const repo of REPOS) {
    it(`${repo}: DDIM and Euler timesteps, ᾱ and σ equal diffusers' from_config`, () => {
      const source = read(`${repo}.scheduler_config.json`);
      const { config, sourceClass } = normaliseSchedulerConfig(source);
      expect(sourceClass).toBe(source._class_name);
      checkAgainstDiffusers(config, read(`${repo}.timesteps.json`), repo);
    });
  }

  it('the real SD 1.5 config (PNDM, diffusers 0.6, no prediction_type) is epsilon with leading DDIM / linspace Euler', () => {
    const { config, dropped } = normaliseSchedulerConfig(read('runwayml--stable-diffusion-v1-5.scheduler_config.json'));
    expect(config.prediction_type).toBe('epsilon');
    expect(config.timestep_spacing).toBeUndefined(); // each sampler takes its own class default
    expect(dropped.join()).toMatch(/skip_prk_steps/);
    // Which spacing each class defaults to is diffusers' (the golden's resolved configs).
    const g = read('runwayml--stable-diffusion-v1-5.timesteps.json') as Golden;
    expect([
      g.DDIMScheduler.resolved_config.timestep_spacing,
      g.EulerDiscreteScheduler.resolved_config.timestep_spacing,
    ]).toEqual(['leading', 'linspace']);
    const [n] = stepCounts(g.DDIMScheduler);
    const ddim = createScheduler('ddim', config as never);
    ddim.setTimesteps(n);
    expect(ddim.timesteps).toEqual(g.DDIMScheduler[`steps_${n}`].timesteps);
    const euler = createScheduler('euler', config as never);
    euler.setTimesteps(n);
    expectClose(euler.timesteps, g.EulerDiscreteScheduler[`steps_${n}`].timesteps, 1e-7, 'euler timesteps');
  });

  it('SD 2.1-768 keeps v_prediction for every sampler', () => {
    const { config } = normaliseSchedulerConfig(read('stabilityai--stable-diffusion-2-1.scheduler_config.json'));
    for (const s of SAMPLERS) expect(createScheduler(s, config as never).config.predictionType).toBe('v_prediction');
  });

  // diffusers' from_config ignores _class_name: the same keys under any of the seven classes
  // give the same DDIM/Euler numbers, so SD 1.5's goldens hold for each class's config.
  const sd15 = read('runwayml--stable-diffusion-v1-5.scheduler_config.json');
  const g15 = read('runwayml--stable-diffusion-v1-5.timesteps.json') as Golden;
  const classExtras: Record<string, Record<string, unknown>> = {
    PNDMScheduler: { skip_prk_steps: true },
    DDIMScheduler: { clip_sample: false, set_alpha_to_one: false },
    DDPMScheduler: { variance_type: 'fixed_small', clip_sample: false },
    LMSDiscreteScheduler: { use_karras_sigmas: false },
    EulerDiscreteScheduler: {
      interpolation_type: 'linear',
      use_karras_sigmas: false,
      timestep_type: 'discrete',
      final_sigmas_type: 'zero',
    },
    EulerAncestralDiscreteScheduler: { rescale_betas_zero_snr: false },
    DPMSolverMultistepScheduler: {
      algorithm_type: 'dpmsolver++',
      solver_order: 2,
      solver_type: 'midpoint',
      lower_order_final: true,
      euler_at_final: false,
      use_karras_sigmas: false,
    },
  };
  for (const cls of SCHEDULER_CLASSES) {
    it(`${cls}: SD's schedule maps (default spacing ${CLASS_TIMESTEP_SPACING[cls]} in the source class)`, () => {
      const { skip_prk_steps: _skip, ...base } = sd15;
      const source = { ...base, _class_name: cls, ...classExtras[cls] };
      const { config, sourceClass } = normaliseSchedulerConfig(source);
      expect(sourceClass).toBe(cls);
      checkAgainstDiffusers(config, g15, cls);
    });
  }

  it('reads a DPMSolverMultistep config as diffusers writes it (bare -Infinity)', () => {
    const text = `{"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "lambda_min_clipped": -Infinity, "variance_type": null, "algorithm_type": "sde-dpmsolver++", "steps_offset": 1}`;
    const json = parsePythonJson(text, 'x') as Record<string, unknown>;
    expect(json.lambda_min_clipped).toBe(-Infinity);
    const { config, dropped } = normaliseSchedulerConfig(json);
    expect(config).not.toHaveProperty('lambda_min_clipped');
    expect(dropped.join()).toMatch(/algorithm_type = "sde-dpmsolver\+\+"/);
  });

  it('diffusers defaults fill the shared keys of a bare config', () => {
    const { config } = normaliseSchedulerConfig({ _class_name: 'DDPMScheduler' });
    expect(config).toMatchObject({
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: 'linear',
      prediction_type: 'epsilon',
      steps_offset: 0,
    });
  });

  it('refuses what would change the schedule, naming every problem, and unknown classes', () => {
    expect(() =>
      normaliseSchedulerConfig({
        ...sd15,
        _class_name: 'EulerDiscreteScheduler',
        use_karras_sigmas: true,
        rescale_betas_zero_snr: true,
      }),
    ).toThrow(/use_karras_sigmas = true: Karras[\s\S]*rescale_betas_zero_snr = true/);
    expect(() => normaliseSchedulerConfig({ ...sd15, beta_schedule: 'squaredcos_cap_v2' })).toThrow(/beta_schedule/);
    expect(() => normaliseSchedulerConfig({ ...sd15, prediction_type: 'flow' })).toThrow(/prediction_type/);
    expect(() => normaliseSchedulerConfig({ ...sd15, _class_name: 'UniPCMultistepScheduler' })).toThrow(
      /UniPCMultistepScheduler.*supported: PNDMScheduler/,
    );
  });
});
