import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { DpmSolverScheduler } from './dpm-solver.ts';
import { createScheduler } from './index.ts';
import { dpmSolverConfigFromJson } from './schedule.ts';

const G = (
  JSON.parse(
    readFileSync(new URL('../../../../shared/data/reference/tiny-sd/goldens.json', import.meta.url), 'utf8'),
  ) as { scheduler: { ddim_config: Record<string, unknown>; alphas_cumprod_all_1000: number[] } }
).scheduler;
const sdConfig = G.ddim_config;
const abar = G.alphas_cumprod_all_1000;

/** A smooth, nonlinear stand-in for the UNet's ε prediction. */
function fakeEps(x: ArrayLike<number>, t: number): Float64Array {
  return Float64Array.from(x, (v, i) => 0.8 * Math.tanh(v) + 0.2 * Math.sin(t / 150 + (i % 7)));
}

/**
 * DPM-Solver++(2M), Lu et al. 2022 Algorithm 2, in float64, written from the paper:
 * α = √ᾱ, σ = √(1−ᾱ), λ = log(α/σ), h_i = λ_{t_i} − λ_{t_{i−1}}, r_i = h_{i−1}/h_i,
 *   x̃_{t_1} = (σ_{t_1}/σ_{t_0})·x̃_{t_0} − α_{t_1}(e^{−h_1} − 1)·x_θ(x̃_{t_0}, t_0)
 *   D_i = (1 + 1/(2r_i))·x_θ(x̃_{t_{i−1}}, t_{i−1}) − 1/(2r_i)·x_θ(x̃_{t_{i−2}}, t_{i−2})
 *   x̃_{t_i} = (σ_{t_i}/σ_{t_{i−1}})·x̃_{t_{i−1}} − α_{t_i}(e^{−h_i} − 1)·D_i
 * The last point is t = 0 with ᾱ = 1 (σ = 0) or ᾱ₀, and the last update is first order when
 * `firstOrderLast` (diffusers' lower_order_final). Returns x̃ after every update.
 */
function dpmSolverPP2M(
  xT: Float32Array,
  timesteps: readonly number[],
  finalAbar: number,
  firstOrderLast: boolean,
  heun = false,
): Float64Array[] {
  const abars = [...timesteps.map((t) => abar[t]), finalAbar];
  const alpha = abars.map((a) => Math.sqrt(a));
  const sigma = abars.map((a) => Math.sqrt(1 - a));
  const lambda = abars.map((a, i) => (a === 1 ? Infinity : Math.log(alpha[i] / sigma[i])));
  const xTheta = (x: Float64Array, i: number) => {
    const e = fakeEps(x, timesteps[i]);
    return x.map((v, k) => (v - sigma[i] * e[k]) / alpha[i]);
  };
  let x = Float64Array.from(xT);
  let prevX0: Float64Array | null = null;
  const out: Float64Array[] = [];
  for (let i = 1; i < abars.length; i++) {
    const x0 = xTheta(x, i - 1);
    const h = lambda[i] - lambda[i - 1];
    const ratio = sigma[i] === 0 ? 0 : sigma[i] / sigma[i - 1];
    const phi = Math.exp(-h) - 1;
    let D: Float64Array;
    if (prevX0 === null || (firstOrderLast && i === abars.length - 1)) {
      D = x0;
    } else {
      const r = (lambda[i - 1] - lambda[i - 2]) / h;
      const p = prevX0;
      D = heun
        ? // Heun-type variant: − α φ D₀ + α (φ/h + 1) D₁, D₁ = (x0 − prev)/r, folded into D.
          x0.map((v, k) => v - ((phi / h + 1) / phi) * ((v - p[k]) / r))
        : x0.map((v, k) => (1 + 1 / (2 * r)) * v - (1 / (2 * r)) * p[k]);
    }
    x = x.map((v, k) => ratio * v - alpha[i] * phi * D[k]);
    out.push(x);
    prevX0 = x0;
  }
  return out;
}

function runScheduler(s: DpmSolverScheduler, xT: Float32Array): Float32Array[] {
  let x = xT;
  const out: Float32Array[] = [];
  for (const t of s.timesteps) {
    x = s.step(Float32Array.from(fakeEps(s.scaleModelInput(x), t)), t, x).prevSample;
    out.push(x);
  }
  return out;
}

describe('DPM-Solver++ 2M scheduler', () => {
  it('has diffusers defaults: order 2, midpoint, lower_order_final, final σ 0, init σ 1', () => {
    const s = new DpmSolverScheduler();
    expect(s.config).toMatchObject({
      solverOrder: 2,
      solverType: 'midpoint',
      lowerOrderFinal: true,
      finalSigmasType: 'zero',
    });
    expect(s.initNoiseSigma).toBe(1);
  });

  it('follows Algorithm 2 (float64 reference) on the SD schedule, 10 steps, first-order last step (rel 2e-5)', () => {
    const s = createScheduler('dpmpp-2m', sdConfig) as DpmSolverScheduler;
    s.setTimesteps(10);
    expect(s.timesteps).toEqual([901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
    const xT = rng(6).normals(128);
    const ours = runScheduler(s, xT);
    const ref = dpmSolverPP2M(xT, s.timesteps, 1, true);
    ours.forEach((x, i) => assertClose(x, ref[i], { rtol: 2e-5, atol: 1e-6 }, `step ${i}`));
  });

  it('follows Algorithm 2 with 20 linspace steps and final σ = σ_min, second order to the end (rel 2e-5)', () => {
    const s = new DpmSolverScheduler(
      dpmSolverConfigFromJson({ ...sdConfig, timestep_spacing: 'linspace', final_sigmas_type: 'sigma_min' }),
    );
    s.setTimesteps(20);
    const xT = rng(7).normals(96);
    const ours = runScheduler(s, xT);
    const ref = dpmSolverPP2M(xT, s.timesteps, abar[0], false);
    ours.forEach((x, i) => assertClose(x, ref[i], { rtol: 2e-5, atol: 1e-6 }, `step ${i}`));
    // Landing on σ = 0 always takes a first-order last step, even without lower_order_final.
    const z = new DpmSolverScheduler(
      dpmSolverConfigFromJson({ ...sdConfig, timestep_spacing: 'linspace', lower_order_final: false }),
    );
    z.setTimesteps(20);
    const refZ = dpmSolverPP2M(xT, z.timesteps, 1, true);
    runScheduler(z, xT).forEach((x, i) => assertClose(x, refZ[i], { rtol: 2e-5, atol: 1e-6 }, `σ=0 end, step ${i}`));
  });

  it('heun solver type and order 1 take their own updates (rel 2e-5)', () => {
    const xT = rng(8).normals(64);
    const heun = new DpmSolverScheduler(dpmSolverConfigFromJson({ ...sdConfig, solver_type: 'heun' }));
    heun.setTimesteps(12);
    const refHeun = dpmSolverPP2M(xT, heun.timesteps, 1, true, true);
    runScheduler(heun, xT).forEach((x, i) => assertClose(x, refHeun[i], { rtol: 2e-5, atol: 1e-6 }, `heun ${i}`));
    const first = new DpmSolverScheduler(dpmSolverConfigFromJson({ ...sdConfig, solver_order: 1 }));
    first.setTimesteps(12);
    // Order 1 of DPM-Solver++ is DDIM: every update uses D = x_θ (r → ∞ in the reference).
    const refFirst = dpmSolverPP2M(xT, first.timesteps, 1, true);
    const ours = runScheduler(first, xT);
    expect(Math.abs(ours[0][0] - refFirst[0][0])).toBeLessThan(1e-5); // identical first step
    const ddimLike = (() => {
      const abars = [...first.timesteps.map((t) => abar[t]), 1];
      let x = Float64Array.from(xT);
      for (let i = 0; i < first.timesteps.length; i++) {
        const e = fakeEps(x, first.timesteps[i]);
        const x0 = x.map((v, k) => (v - Math.sqrt(1 - abars[i]) * e[k]) / Math.sqrt(abars[i]));
        const eps = x.map((v, k) => (v - Math.sqrt(abars[i]) * x0[k]) / Math.sqrt(1 - abars[i]));
        x = x0.map((v, k) => Math.sqrt(abars[i + 1]) * v + Math.sqrt(1 - abars[i + 1]) * eps[k]);
      }
      return x;
    })();
    assertClose(ours[ours.length - 1], ddimLike, { rtol: 2e-5, atol: 1e-6 }, 'order 1 = DDIM');
  });

  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    it(`recovers x₀ with an exact ${prediction} model, x̂₀ exact at every step (rel 1e-5)`, () => {
      const r = rng(9);
      const x0 = r.normals(200);
      const noise = r.normals(200);
      const s = createScheduler('dpmpp-2m', { ...sdConfig, prediction_type: prediction }) as DpmSolverScheduler;
      s.setTimesteps(10);
      let x = s.addNoise(x0, noise, s.timesteps[0]);
      s.timesteps.forEach((t) => {
        const a = abar[t];
        const epsNow = x.map((v, i) => (v - Math.sqrt(a) * x0[i]) / Math.sqrt(1 - a));
        const model =
          prediction === 'epsilon' ? epsNow : epsNow.map((e, i) => Math.sqrt(a) * e - Math.sqrt(1 - a) * x0[i]);
        const out = s.step(model, t, x);
        assertClose(out.predOriginalSample, x0, { rtol: 1e-5, atol: 1e-5 }, `x̂₀ at ${t}`);
        x = out.prevSample;
      });
      assertClose(x, x0, { rtol: 1e-5, atol: 1e-5 }, 'final');
    });
  }

  it('keeps its history private, restarts on setTimesteps and refuses unknown timesteps', () => {
    const s = createScheduler('dpmpp-2m', sdConfig);
    s.setTimesteps(4);
    const x = rng(10).normals(8);
    const first = s.step(x, s.timesteps[0], x);
    first.predOriginalSample.fill(1e6); // the caller owns what step() returns
    const a = s.step(x, s.timesteps[1], first.prevSample).prevSample;
    s.setTimesteps(4);
    const again = s.step(x, s.timesteps[0], x);
    const b = s.step(x, s.timesteps[1], again.prevSample).prevSample;
    expect([...a]).toEqual([...b]);
    expect(() => s.step(x, 5, x)).toThrow(/expected timestep/);
    s.reset();
    expect(() => s.step(x, 5, x)).toThrow(/not in the schedule/);
  });
});
