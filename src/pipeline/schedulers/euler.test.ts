import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { EulerScheduler } from './euler.ts';
import { createScheduler } from './index.ts';
import { eulerConfigFromJson } from './schedule.ts';

interface EulerGolden {
  timestep_spacing: string;
  timesteps: number[];
  sigmas: number[];
  init_noise_sigma: number;
}
const G = (
  JSON.parse(
    readFileSync(new URL('../../../../shared/data/reference/tiny-sd/goldens.json', import.meta.url), 'utf8'),
  ) as {
    scheduler: {
      ddim_config: Record<string, unknown>;
      alphas_cumprod_all_1000: number[];
      euler_from_ddim_config: EulerGolden;
      euler_linspace: EulerGolden;
    };
  }
).scheduler;
const sdConfig = G.ddim_config;

function checkAgainst(s: EulerScheduler, golden: EulerGolden): void {
  s.setTimesteps(golden.timesteps.length);
  expect(s.config.timestepSpacing).toBe(golden.timestep_spacing);
  expect(s.timesteps).toEqual(golden.timesteps);
  // σ is the float32 value of the interpolated float32 table: ≤ 1 ulp from diffusers.
  golden.sigmas.forEach((e, i) => expect(Math.abs(s.sigmas[i] - e)).toBeLessThanOrEqual(2e-7 * e));
  expect(Math.abs(s.initNoiseSigma - golden.init_noise_sigma)).toBeLessThanOrEqual(2e-7 * golden.init_noise_sigma);
}

describe('Euler scheduler', () => {
  it('matches diffusers built from the SD DDIM config (leading): timesteps, σ, init σ = √(σ_max²+1) (rel 2e-7)', () => {
    checkAgainst(createScheduler('euler', sdConfig) as EulerScheduler, G.euler_from_ddim_config);
  });

  it('matches diffusers with its own default spacing (linspace): init σ = σ_max (rel 2e-7)', () => {
    const { timestep_spacing: _, ...rest } = sdConfig;
    const s = new EulerScheduler(eulerConfigFromJson(rest));
    checkAgainst(s, G.euler_linspace);
  });

  it('interpolates σ between training steps for fractional timesteps (float64 check from golden ᾱ, rel 1e-6)', () => {
    const { timestep_spacing: _, ...rest } = sdConfig;
    const s = new EulerScheduler(eulerConfigFromJson(rest));
    s.setTimesteps(7); // 999, 832.5, 666, 499.5, …
    const sigmaAt = (t: number) => Math.sqrt((1 - G.alphas_cumprod_all_1000[t]) / G.alphas_cumprod_all_1000[t]);
    const expected = s.timesteps.map((t) => {
      const j = Math.floor(t);
      return j === t ? sigmaAt(t) : sigmaAt(j) + (t - j) * (sigmaAt(j + 1) - sigmaAt(j));
    });
    s.timesteps.forEach((_t, i) => expect(Math.abs(s.sigmas[i] - expected[i]) / expected[i]).toBeLessThan(1e-6));
    expect(s.sigmas[7]).toBe(0);
  });

  it('scales the model input by 1/√(σ²+1) and steps x + (σ_next − σ)·(x − x̂₀)/σ (float64 check, rel 1e-6)', () => {
    const r = rng(4);
    const x = r.normals(64, 5);
    const eps = r.normals(64);
    const s = createScheduler('euler', sdConfig) as EulerScheduler;
    s.setTimesteps(10);
    const t = s.timesteps[0];
    const [sigma, next] = s.sigmas;
    assertClose(
      s.scaleModelInput(x, t),
      Array.from(x, (v) => v / Math.sqrt(sigma * sigma + 1)),
      { rtol: 1e-6, atol: 0 },
      'scaled',
    );
    const out = s.step(eps, t, x);
    const expected = Array.from(x, (xi, i) => {
      const x0 = xi - sigma * eps[i];
      return xi + ((xi - x0) / sigma) * (next - sigma);
    });
    assertClose(out.prevSample, expected, { rtol: 1e-6, atol: 1e-6 }, 'x_next');
    assertClose(
      out.predOriginalSample,
      Array.from(x, (xi, i) => xi - sigma * eps[i]),
      { rtol: 1e-6, atol: 1e-6 },
      'x̂₀',
    );
  });

  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    it(`recovers x₀ exactly with an exact ${prediction} model (rel 1e-5)`, () => {
      const r = rng(5);
      const x0 = r.normals(256);
      const noise = r.normals(256);
      const s = createScheduler('euler', { ...sdConfig, prediction_type: prediction }) as EulerScheduler;
      s.setTimesteps(10);
      let x = s.addNoise(x0, noise, s.timesteps[0]); // x = x₀ + σ₀·ε (σ-space sample)
      for (const t of s.timesteps) {
        const input = s.scaleModelInput(x, t);
        const sigma = s.sigmas[s.timesteps.indexOf(t)];
        const c = Math.sqrt(sigma * sigma + 1);
        // The network sees input = α·x₀ + σα·ε with α = 1/c.
        const epsNow = input.map((v, i) => (v * c - x0[i]) / sigma);
        const model = prediction === 'epsilon' ? epsNow : epsNow.map((e, i) => e / c - (sigma / c) * x0[i]);
        const out = s.step(model, t, x);
        assertClose(out.predOriginalSample, x0, { rtol: 1e-5, atol: 1e-5 }, `x̂₀ at t=${t}`);
        x = out.prevSample;
      }
      assertClose(x, x0, { rtol: 1e-5, atol: 1e-5 }, 'final');
    });
  }

  it('adds noise as x₀ + σ·ε', () => {
    const s = createScheduler('euler', sdConfig) as EulerScheduler;
    s.setTimesteps(10);
    const out = s.addNoise(Float32Array.of(1, 2), Float32Array.of(1, -1), 501);
    const sigma = s.sigmas[4];
    assertClose(out, [1 + sigma, 2 - sigma], { rtol: 1e-6, atol: 0 });
  });

  it('insists on the timesteps in order', () => {
    const s = createScheduler('euler', sdConfig);
    s.setTimesteps(10);
    const x = new Float32Array(4);
    s.step(s.scaleModelInput(x, 901), 901, x);
    expect(() => s.step(x, 701, x)).toThrow(/expected timestep 801/);
    expect(() => s.step(x, 123, x)).toThrow(/expected timestep 801/);
    s.reset();
    expect(() => s.step(x, 123, x)).toThrow(/not in the schedule/);
  });
});
