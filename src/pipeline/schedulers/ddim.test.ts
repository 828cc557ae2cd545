import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { DdimScheduler } from './ddim.ts';
import { createScheduler } from './index.ts';
import { ddimConfigFromJson } from './schedule.ts';

interface Goldens {
  scheduler: {
    ddim_config: Record<string, unknown>;
    ddim_timesteps: number[];
    ddim_alphas_cumprod_at_timesteps: number[];
    ddim_final_alpha_cumprod: number;
  };
  ddim_loop: {
    initial_latent: { data: number[] };
    guidance_scale: number;
    num_inference_steps: number;
    eta: number;
    steps: { timestep: number; latent_sum: number; guided_eps_sum: number }[];
  };
}
const G = JSON.parse(
  readFileSync(new URL('../../../../shared/data/reference/tiny-sd/goldens.json', import.meta.url), 'utf8'),
) as Goldens;
const sdConfig = G.scheduler.ddim_config;

/** An oracle denoiser: the ε that makes x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for the known x₀. */
function oracleEps(s: DdimScheduler, x: Float32Array, x0: Float32Array, t: number): Float32Array {
  const a = s.alphasCumprod[t];
  return x.map((v, i) => (v - Math.sqrt(a) * x0[i]) / Math.sqrt(1 - a));
}

describe('DDIM scheduler', () => {
  it('matches diffusers: timesteps, ᾱ at them and the final ᾱ (rel 2e-7)', () => {
    const s = new DdimScheduler(ddimConfigFromJson(sdConfig));
    s.setTimesteps(G.scheduler.ddim_timesteps.length);
    expect(s.timesteps).toEqual(G.scheduler.ddim_timesteps);
    expect(s.initNoiseSigma).toBe(1);
    assertClose(
      s.timesteps.map((t) => s.alphasCumprod[t]),
      G.scheduler.ddim_alphas_cumprod_at_timesteps,
      { rtol: 2e-7, atol: 0 },
      'ᾱ at timesteps',
    );
    expect(Math.abs(s.finalAlphaCumprod - G.scheduler.ddim_final_alpha_cumprod)).toBeLessThan(2e-7);
  });

  it('reproduces the ddim_loop golden on latent sums (the step is linear, so sums follow it exactly; rel 1e-5)', () => {
    // Each golden step records Σ guided ε and Σ latent after the step. Running the real
    // step on one-element "latents" holding these sums must give the next Σ latent.
    const s = createScheduler('ddim', sdConfig);
    s.setTimesteps(G.ddim_loop.num_inference_steps);
    let sum = G.ddim_loop.initial_latent.data.reduce((a, b) => a + b, 0);
    G.ddim_loop.steps.forEach((golden, i) => {
      expect(s.timesteps[i]).toBe(golden.timestep);
      const { prevSample } = s.step(Float32Array.of(golden.guided_eps_sum), golden.timestep, Float32Array.of(sum), {
        eta: G.ddim_loop.eta,
      });
      expect(Math.abs(prevSample[0] - golden.latent_sum)).toBeLessThan(1e-5 * Math.max(1, Math.abs(golden.latent_sum)));
      sum = golden.latent_sum; // restart each step from the golden value so errors do not compound
    });
  });

  it('agrees with DDIM Eq. 12 written out in float64, with η = 0 and η = 0.7 (rel 1e-6)', () => {
    const r = rng(1);
    const x = r.normals(64);
    const eps = r.normals(64);
    const z = r.normals(64);
    for (const eta of [0, 0.7]) {
      const s = new DdimScheduler(ddimConfigFromJson(sdConfig));
      s.setTimesteps(20);
      const t = s.timesteps[3];
      const prev = t - 50;
      const aT = s.alphasCumprod[t];
      const aP = s.alphasCumprod[prev];
      const sigma = eta * Math.sqrt((1 - aP) / (1 - aT)) * Math.sqrt(1 - aT / aP);
      const expected = Array.from(x, (xi, i) => {
        const x0 = (xi - Math.sqrt(1 - aT) * eps[i]) / Math.sqrt(aT);
        return Math.sqrt(aP) * x0 + Math.sqrt(1 - aP - sigma * sigma) * eps[i] + sigma * z[i];
      });
      const out = s.step(eps, t, x, { eta, noise: z });
      assertClose(out.prevSample, expected, { rtol: 1e-6, atol: 1e-7 }, `x_prev (η=${eta})`);
    }
  });

  it('with an exact-ε model, x̂₀ = x₀ at every step and η = 0 DDIM lands on x₀ (rel 1e-5)', () => {
    const r = rng(2);
    const x0 = r.normals(256);
    const noise = r.normals(256);
    for (const setAlphaToOne of [false, true]) {
      const s = new DdimScheduler(ddimConfigFromJson({ ...sdConfig, set_alpha_to_one: setAlphaToOne }));
      s.setTimesteps(10);
      let x = s.addNoise(x0, noise, s.timesteps[0]);
      for (const t of s.timesteps) {
        const out = s.step(oracleEps(s, x, x0, t), t, x);
        assertClose(out.predOriginalSample, x0, { rtol: 1e-5, atol: 1e-6 }, `x̂₀ at t=${t}`);
        x = out.prevSample;
      }
      // The last step lands at ᾱ_final: exactly x₀ when set_alpha_to_one, else √ᾱ₀·x₀ + √(1−ᾱ₀)·ε.
      const aF = s.finalAlphaCumprod;
      const expected = x0.map((v, i) => Math.sqrt(aF) * v + Math.sqrt(1 - aF) * noise[i]);
      assertClose(x, expected, { rtol: 1e-5, atol: 1e-6 }, `final (set_alpha_to_one=${setAlphaToOne})`);
      if (setAlphaToOne) assertClose(x, x0, { rtol: 1e-5, atol: 1e-6 }, 'final = x₀');
    }
  });

  it('v-prediction: v = √ᾱ·ε − √(1−ᾱ)·x₀ round-trips to x₀ and ε, and sampling with exact v recovers x₀', () => {
    const r = rng(3);
    const x0 = r.normals(128);
    const eps = r.normals(128);
    const s = new DdimScheduler(
      ddimConfigFromJson({ ...sdConfig, prediction_type: 'v_prediction', set_alpha_to_one: true }),
    );
    s.setTimesteps(8);
    for (const t of [s.timesteps[0], 500, 1]) {
      const xt = s.addNoise(x0, eps, t);
      const v = s.velocity(x0, eps, t);
      const a = s.alphasCumprod[t];
      // Independent algebra: x₀ = √ᾱ·x_t − √(1−ᾱ)·v and ε = √(1−ᾱ)·x_t + √ᾱ·v.
      assertClose(
        Array.from(xt, (xi, i) => Math.sqrt(a) * xi - Math.sqrt(1 - a) * v[i]),
        x0,
        { rtol: 1e-6, atol: 1e-6 },
        'x₀ from v',
      );
      assertClose(
        Array.from(xt, (xi, i) => Math.sqrt(1 - a) * xi + Math.sqrt(a) * v[i]),
        eps,
        { rtol: 1e-6, atol: 1e-6 },
        'ε from v',
      );
    }
    let x = s.addNoise(x0, eps, s.timesteps[0]);
    for (const t of s.timesteps) {
      const a = s.alphasCumprod[t];
      const epsNow = x.map((xi, i) => (xi - Math.sqrt(a) * x0[i]) / Math.sqrt(1 - a));
      const out = s.step(s.velocity(x0, epsNow, t), t, x);
      assertClose(out.predOriginalSample, x0, { rtol: 1e-5, atol: 1e-5 }, `v: x̂₀ at t=${t}`);
      x = out.prevSample;
    }
    assertClose(x, x0, { rtol: 1e-5, atol: 1e-5 }, 'v: final = x₀');
  });

  it('clips x̂₀ when clip_sample is on', () => {
    const s = new DdimScheduler(ddimConfigFromJson({ ...sdConfig, clip_sample: true, clip_sample_range: 1 }));
    s.setTimesteps(10);
    const out = s.step(Float32Array.of(0, 0), 901, Float32Array.of(5, -5));
    expect([...out.predOriginalSample]).toEqual([1, -1]);
  });

  it('explains misuse', () => {
    const s = new DdimScheduler(ddimConfigFromJson(sdConfig));
    expect(() => s.step(new Float32Array(1), 901, new Float32Array(1))).toThrow(/setTimesteps/);
    s.setTimesteps(10);
    expect(() => s.step(new Float32Array(1), 901, new Float32Array(1), { eta: 1 })).toThrow(/noise/);
    expect(() => s.step(new Float32Array(1), 1000, new Float32Array(1))).toThrow(/timestep 1000/);
    expect(() => s.setTimesteps(1001)).toThrow(/exceeds/);
    expect(() => s.setTimesteps(0)).toThrow(/positive integer/);
  });
});
