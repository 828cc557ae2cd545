import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import {
  alphasCumprod,
  betas,
  ddimConfigFromJson,
  ddimTimesteps,
  dpmSolverConfigFromJson,
  dpmSolverTimesteps,
  eulerConfigFromJson,
  eulerTimesteps,
  interpAt,
  roundHalfEven,
} from './schedule.ts';

interface SchedulerGoldens {
  ddim_config: Record<string, unknown>;
  ddim_timesteps: number[];
  ddim_alphas_cumprod_at_timesteps: number[];
  ddim_final_alpha_cumprod: number;
  alphas_cumprod_all_1000: number[];
}
const G = (
  JSON.parse(
    readFileSync(new URL('../../../../shared/data/reference/tiny-sd/goldens.json', import.meta.url), 'utf8'),
  ) as { scheduler: SchedulerGoldens }
).scheduler;

const sd = ddimConfigFromJson(G.ddim_config);

describe('noise schedule', () => {
  it('reads the SD DDIM config', () => {
    const c = G.ddim_config;
    expect(sd).toMatchObject({
      numTrainTimesteps: c.num_train_timesteps,
      betaStart: c.beta_start,
      betaEnd: c.beta_end,
      betaSchedule: c.beta_schedule,
      setAlphaToOne: c.set_alpha_to_one,
      stepsOffset: c.steps_offset,
      clipSample: c.clip_sample,
      predictionType: c.prediction_type,
      timestepSpacing: c.timestep_spacing,
    });
  });

  it('ᾱ matches diffusers for all 1000 steps (float32 emulation: ≤ 1 float32 ulp, rel 2e-7)', () => {
    assertClose(alphasCumprod(sd), G.alphas_cumprod_all_1000, { rtol: 2e-7, atol: 0 }, 'alphas_cumprod');
    // Elementwise relative check too: the small ᾱ at the end would hide in a scale-relative bound.
    const a = alphasCumprod(sd);
    G.alphas_cumprod_all_1000.forEach((e, i) => expect(Math.abs(a[i] - e) / e).toBeLessThan(2e-7));
  });

  it('β is linear in √β for scaled_linear and linear for linear (float64 check, rel 1e-6)', () => {
    const b = betas(sd);
    const r0 = Math.sqrt(0.00085);
    const r1 = Math.sqrt(0.012);
    for (const i of [0, 1, 499, 500, 998, 999]) {
      const r = r0 + ((r1 - r0) * i) / 999;
      expect(Math.abs(b[i] - r * r) / (r * r)).toBeLessThan(1e-6);
    }
    const lin = betas(ddimConfigFromJson({ beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 }));
    for (const i of [0, 250, 999]) expect(Math.abs(lin[i] - (0.0001 + (0.0199 * i) / 999))).toBeLessThan(1e-9);
    const trained = betas(ddimConfigFromJson({ num_train_timesteps: 3, trained_betas: [0.1, 0.2, 0.3] }));
    expect([...trained]).toEqual([Math.fround(0.1), Math.fround(0.2), Math.fround(0.3)]);
  });

  it('rounds halves to even like numpy', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, 832.5, 499.5, 166.5].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, 2, 3, 832, 500, 166,
    ]);
  });

  it('builds the DDIM timestep grids of every spacing', () => {
    expect(ddimTimesteps(sd, 10)).toEqual(G.ddim_timesteps);
    const with_ = (spacing: string) => ddimConfigFromJson({ ...G.ddim_config, timestep_spacing: spacing });
    expect(ddimTimesteps(with_('trailing'), 10)).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(ddimTimesteps(with_('trailing'), 7)).toEqual([999, 856, 713, 570, 428, 285, 142]);
    expect(ddimTimesteps(with_('trailing'), 3)).toEqual([999, 666, 332]);
    expect(ddimTimesteps(with_('linspace'), 10)).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(ddimTimesteps(with_('linspace'), 7)).toEqual([999, 832, 666, 500, 333, 166, 0]);
    expect(ddimTimesteps(with_('leading'), 1)).toEqual([1]);
  });

  it('builds the Euler and DPM-Solver grids', () => {
    const euler = eulerConfigFromJson({});
    expect(euler.timestepSpacing).toBe('linspace');
    expect(eulerTimesteps(euler, 7)).toEqual([999, 832.5, 666, 499.5, 333, 166.5, 0]);
    expect(eulerTimesteps(eulerConfigFromJson(G.ddim_config), 10)).toEqual(G.ddim_timesteps);
    const dpm = dpmSolverConfigFromJson({});
    expect(dpmSolverTimesteps(dpm, 10)).toEqual([999, 899, 799, 699, 599, 500, 400, 300, 200, 100]);
    expect(dpmSolverTimesteps(dpmSolverConfigFromJson(G.ddim_config), 10)).toEqual([
      901, 811, 721, 631, 541, 451, 361, 271, 181, 91,
    ]);
    expect(dpmSolverTimesteps(dpmSolverConfigFromJson({ timestep_spacing: 'trailing' }), 4)).toEqual([
      999, 749, 499, 249,
    ]);
  });

  it('interpolates like np.interp', () => {
    const v = Float64Array.from([1, 3, 7]);
    expect([-1, 0, 0.25, 1, 1.5, 2, 5].map((t) => interpAt(v, t))).toEqual([1, 1, 1.5, 3, 5, 7, 7]);
  });

  it('refuses options it does not implement, with the option named', () => {
    expect(() => ddimConfigFromJson({ thresholding: true })).toThrow(/thresholding/);
    expect(() => eulerConfigFromJson({ use_karras_sigmas: true })).toThrow(/use_karras_sigmas/);
    expect(() => dpmSolverConfigFromJson({ algorithm_type: 'sde-dpmsolver++' })).toThrow(/algorithm_type/);
    expect(() => dpmSolverConfigFromJson({ solver_order: 3 })).toThrow(/solver_order/);
    expect(() => ddimConfigFromJson({ beta_schedule: 'squaredcos_cap_v2' })).toThrow(/beta_schedule/);
    expect(() => ddimConfigFromJson({ prediction_type: 'flow' })).toThrow(/prediction_type/);
    expect(() => ddimConfigFromJson({ num_train_timesteps: 3, trained_betas: [0.1] })).not.toThrow();
    expect(() => betas(ddimConfigFromJson({ num_train_timesteps: 3, trained_betas: [0.1] }))).toThrow(/trained_betas/);
  });
});
