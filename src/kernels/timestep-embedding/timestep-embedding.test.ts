import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import {
  resolveTimestepOptions,
  timestepEmbeddingBackwardRef,
  timestepEmbeddingForwardRef,
  timestepFrequencies,
  type TimestepEmbeddingOptions,
} from './timestep-embedding-reference.ts';
import {
  timestepEmbeddingBackward,
  timestepEmbeddingForward,
  timestepEmbeddingKernels,
} from './timestep-embedding-kernels.ts';
import { timestepEmbedding } from './timestep-embedding.ts';

const SD: TimestepEmbeddingOptions = { flipSinToCos: true, downscaleFreqShift: 0 };

// The reference evaluates sin/cos of the float64 angle t·f; the GPU (like PyTorch) rounds
// t·f to fp32 first, which moves an angle near 1000 by up to 3e-5. Hence 1e-4 absolute
// for t up to 999, and 2e-6 where t ≤ 4 (angles < 4, fp32 rounding ≲ 2.4e-7).
const TOL_LARGE_T = { rtol: 0, atol: 1e-4 };
const TOL_SMALL_T = { rtol: 0, atol: 2e-6 };
// Against the reference evaluated at the GPU's own fp32 angles (observed ≈ 1.5e-7).
const TOL_FP32_ANGLES = { rtol: 0, atol: 1e-6 };

describe('timestep embedding', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of timestepEmbeddingKernels) await e.compile(k);
  });

  it.each([
    { dim: 8, opts: {} },
    { dim: 9, opts: SD },
    { dim: 7, opts: { flipSinToCos: true, downscaleFreqShift: 0.5, scale: 1.7, maxPeriod: 100 } },
  ])('reference gradient matches central finite differences (dim=$dim, $opts)', ({ dim, opts }) => {
    const t = f64([0.3, 2.9, 7.25, 0]);
    gradcheck(
      ([t]) => timestepEmbeddingForwardRef(t, dim, opts),
      ([t], dY) => [timestepEmbeddingBackwardRef(t, dY, dim, opts)],
      [t],
      { rtol: 1e-6 },
    );
  });

  it('frequencies: fp32 like PyTorch, within ~1e-6 of the exact formula', () => {
    // numpy float32 (-log(1e4) * arange(160, float32) / 160, exp) — what diffusers computes for SD.
    const f = timestepFrequencies(320, resolveTimestepOptions(320, SD));
    expect(f.length).toBe(160);
    expect(f[0]).toBe(1);
    assertClose([f[1], f[77], f[159]], [0.9440608620643616, 0.011885019019246101, 0.00010592537728371099], {
      rtol: 2.5e-7,
      atol: 0,
    });
    const exact = Array.from({ length: 160 }, (_, i) => Math.exp((-Math.log(10000) * i) / 160));
    // The exponent (|e| ≤ 9.2) rounded to fp32 moves exp(e) by up to ~5e-7 relative, plus
    // the rounding of −ln(1e4)·i and of the result itself.
    for (let i = 0; i < 160; i++) expect(Math.abs(f[i] - exact[i]) / exact[i]).toBeLessThan(1.5e-6);
    // diffusers' defaults: shift 1 divides by half − 1.
    const g = timestepFrequencies(6, resolveTimestepOptions(6));
    assertClose(g, [1, 0.01, 0.0001], { rtol: 1e-6, atol: 0 });
  });

  it('matches diffusers on the SD configuration (dim 320, flip, shift 0) for t = 999', async () => {
    const e = await testEngine();
    // numpy float32 re-computation of get_timestep_embedding(t=[999], 320, True, 0).
    const cols = [0, 1, 77, 159, 160, 161, 237, 319];
    const want = [
      0.9996498823165894, 0.8026775121688843, 0.7691815495491028, 0.9944063425064087, -0.02646075375378132,
      0.596413254737854, -0.6390303373336792, 0.1056220680475235,
    ];
    await e.scopeAsync(async () => {
      const y = await timestepEmbedding(e, [999], 320, SD).read();
      // Same fp32 angles as the golden: only sin/cos accuracy remains.
      assertClose(
        cols.map((c) => y[c]),
        want,
        { rtol: 0, atol: 2e-6 },
        'y',
      );
    });
  });

  it('rejects a zero divisor and non-(B) timesteps', async () => {
    const e = await testEngine();
    expect(() => resolveTimestepOptions(2)).toThrow(/divides by zero/);
    e.scope(() => {
      expect(() => timestepEmbeddingForward(e, e.tensor([1, 2], [1, 2]), 4)).toThrow(/\(B\)/);
    });
  });

  // Odd dims (zero pad column), dim = 1 (pad only), half > the 64-wide backward workgroup,
  // B·dim over several 256-wide workgroups, and every option.
  it.each([
    { B: 1, dim: 1, opts: SD, tMax: 999 },
    { B: 3, dim: 7, opts: {}, tMax: 4 },
    { B: 5, dim: 320, opts: SD, tMax: 999 },
    { B: 4, dim: 257, opts: { flipSinToCos: false, downscaleFreqShift: 1, scale: 0.5, maxPeriod: 500 }, tMax: 999 },
    { B: 2, dim: 130, opts: { flipSinToCos: true, downscaleFreqShift: 0.25, scale: 3 }, tMax: 1.3 },
  ])('GPU forward and backward match the reference (B=$B, dim=$dim, $opts)', async ({ B, dim, opts, tMax }) => {
    const e = await testEngine();
    const r = rng(B * 1000 + dim);
    const ts = r.uniforms(B, 0, tMax);
    if (tMax > 100) ts[0] = 999;
    const dYs = r.normals(B * dim);
    const tol = tMax * (opts.scale ?? 1) > 4 ? TOL_LARGE_T : TOL_SMALL_T;
    await e.scopeAsync(async () => {
      const t = e.tensor(ts, [B]);
      const y = timestepEmbeddingForward(e, t, dim, opts);
      expect(y.shape).toEqual([B, dim]);
      const got = await y.read();
      assertClose(got, timestepEmbeddingForwardRef(ts, dim, opts), tol, 'y');
      // Same fp32 angles as the GPU: what remains is sin/cos accuracy after range reduction.
      assertClose(got, timestepEmbeddingForwardRef(ts, dim, opts, true), TOL_FP32_ANGLES, 'y (fp32 angles)');
      const dT = timestepEmbeddingBackward(e, t, e.tensor(dYs, [B, dim]), dim, opts);
      expect(dT.shape).toEqual([B]);
      const gotDT = await dT.read();
      // dT sums ⌊dim/2⌋ terms f·dY·sin/cos: each carries the angle error above.
      const wantDT = timestepEmbeddingBackwardRef(ts, dYs, dim, opts);
      assertClose(gotDT, wantDT, { rtol: 1e-4, atol: tol.atol * 4 }, 'dT');
      const wantDT32 = timestepEmbeddingBackwardRef(ts, dYs, dim, opts, true);
      assertClose(gotDT, wantDT32, { rtol: 1e-5, atol: 1e-6 }, 'dT (fp32 angles)');
    });
  });

  it('records on the tape: backward reaches t.grad and frees everything', async () => {
    const e = await testEngine();
    const ts = [3, 0.5, 2];
    const dim = 12;
    const dYs = rng(5).normals(ts.length * dim);
    const before = e.pool.getStats().liveBytes;
    const t = e.parameter(ts, [3], 't');
    const opts = { ...SD };
    const y = e.scope(() => timestepEmbedding(t, dim, opts));
    opts.flipSinToCos = false; // the op kept its own copy for backward
    const dY = e.tensor(dYs, [3, dim]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(
      await t.grad!.read(),
      timestepEmbeddingBackwardRef(ts, dYs, dim, SD),
      { rtol: 1e-5, atol: 1e-5 },
      't.grad',
    );
    t.dispose();
    // Plain numbers (the UNet's case) give no tape node.
    const tapeBefore = e.tape.length;
    e.scope(() => {
      timestepEmbedding(e, [1, 2], dim, SD);
    });
    expect(e.tape.length).toBe(tapeBefore);
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
