import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { groupNormBackwardRef, groupNormForwardRef, type GroupNormDims } from './group-norm-reference.ts';
import {
  groupNormBackward,
  groupNormForward,
  groupNormKernels,
  groupNormSubgroupKernels,
  type NormVariant,
} from './group-norm-kernels.ts';
import { groupNorm } from './group-norm.ts';

// fp32 GPU vs float64 reference, relative to the largest |expected| (see test/close.ts).
const TOL_Y = { rtol: 1e-5, atol: 1e-5 };
const TOL_STATS = { rtol: 1e-5, atol: 1e-6 };
const TOL_GRAD = { rtol: 1e-4, atol: 1e-5 };

const dimsOf = (shape: number[], groups: number): GroupNormDims => ({
  batch: shape[0],
  channels: shape[1],
  spatial: shape.slice(2).reduce((a, b) => a * b, 1),
  groups,
});

describe('groupNorm', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of groupNormKernels) await e.compile(k);
    if (e.info.subgroups) for (const k of groupNormSubgroupKernels) await e.compile(k);
  });

  it.each([false, true])('reference gradient matches central finite differences (silu=%s)', (silu) => {
    const dims = { batch: 2, channels: 6, spatial: 5, groups: 3 };
    const r = rng(silu ? 11 : 10);
    const x = f64(r.normals(2 * 6 * 5, 2));
    const w = f64(r.normals(6));
    const b = f64(r.normals(6));
    gradcheck(
      ([x, w, b]) => groupNormForwardRef(x, dims, w, b, 1e-5, silu).y,
      ([x, w, b], dY) => {
        const g = groupNormBackwardRef(x, dims, w, b, dY, 1e-5, silu);
        return [g.dX, g.dW, g.dB];
      },
      [x, w, b],
      { rtol: 1e-5, atol: 1e-7 },
    );
  });

  // [shape, groups]: odd spatial sizes, a (B, C) input, vec4-able spatial sizes, groups
  // larger than the workgroup (273 and 2304 values), and B·G from 2 to 32.
  const cases: [number[], number][] = [
    [[1, 4, 3, 3], 2],
    [[2, 6, 5], 3],
    [[3, 10], 5],
    [[2, 12, 4, 4], 4],
    [[1, 6, 13, 7], 2],
    [[1, 32, 12, 12], 2],
    [[4, 16, 2, 2], 8],
  ];
  it.each(cases)('GPU forward and backward match the reference (x=%j, groups=%i)', async (shape, groups) => {
    const e = await testEngine();
    const dims = dimsOf(shape, groups);
    const size = shape.reduce((a, b) => a * b, 1);
    const r = rng(size + groups);
    const xs = r.normals(size, 2).map((v) => v + 0.5);
    const ws = r.normals(dims.channels);
    const bs = r.normals(dims.channels);
    const dYs = r.normals(size);
    for (const silu of [false, true]) {
      const ref = groupNormForwardRef(xs, dims, ws, bs, 1e-5, silu);
      const refG = groupNormBackwardRef(xs, dims, ws, bs, dYs, 1e-5, silu);
      for (const variant of ['naive', 'tuned'] as NormVariant[]) {
        const what = `${variant}${silu ? '+silu' : ''}`;
        await e.scopeAsync(async () => {
          const x = e.tensor(xs, shape);
          const w = e.tensor(ws, [dims.channels]);
          const b = e.tensor(bs, [dims.channels]);
          const dY = e.tensor(dYs, shape);
          const { y, mean, rstd } = groupNormForward(e, x, groups, w, b, 1e-5, { silu, variant });
          expect(y.shape).toEqual(shape);
          expect(mean.shape).toEqual([dims.batch, groups]);
          assertClose(await y.read(), ref.y, TOL_Y, `y (${what})`);
          assertClose(await mean.read(), ref.mean, TOL_STATS, `mean (${what})`);
          assertClose(await rstd.read(), ref.rstd, TOL_STATS, `rstd (${what})`);
          const g = groupNormBackward(e, x, groups, w, b, mean, rstd, dY, { silu, variant });
          assertClose(await g.dX!.read(), refG.dX, TOL_GRAD, `dX (${what})`);
          assertClose(await g.dW!.read(), refG.dW, TOL_GRAD, `dW (${what})`);
          assertClose(await g.dB!.read(), refG.dB, TOL_GRAD, `dB (${what})`);
        });
      }
    }
  });

  it('tuned (vec4, subgroups when present) and naive kernels agree', async () => {
    const e = await testEngine();
    const shape = [2, 24, 6, 6];
    const r = rng(5);
    const xs = r.normals(2 * 24 * 36, 3);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, shape);
      const w = e.tensor(r.normals(24), [24]);
      const b = e.tensor(r.normals(24), [24]);
      const dY = e.tensor(r.normals(xs.length), shape);
      const run = async (variant: NormVariant) => {
        const f = groupNormForward(e, x, 6, w, b, 1e-5, { silu: true, variant });
        const g = groupNormBackward(e, x, 6, w, b, f.mean, f.rstd, dY, { silu: true, variant });
        return Promise.all([f.y, f.rstd, g.dX!, g.dW!, g.dB!].map((t) => t.read()));
      };
      const naive = await run('naive');
      const tuned = await run('tuned');
      naive.forEach((n, i) => assertClose(tuned[i], n, { rtol: 1e-5, atol: 1e-6 }, `output ${i}`));
    });
  });

  // The tuned backward takes a fused path when dX is needed and the stats-only one when it
  // is not: every subset must give the reference gradients (TOL_GRAD).
  it.each<[{ x?: boolean; weight?: boolean; bias?: boolean }, string]>([
    [{ x: false }, 'weight and bias only'],
    [{ weight: false, bias: false }, 'x only'],
    [{ bias: false }, 'x and weight'],
  ])('backward with need=%j (%s) matches the reference', async (need, _what) => {
    const e = await testEngine();
    const shape = [3, 8, 4, 5];
    const dims = dimsOf(shape, 4);
    const r = rng(17);
    const xs = r.normals(3 * 8 * 20, 2);
    const ws = r.normals(8);
    const bs = r.normals(8);
    const dYs = r.normals(xs.length);
    const refG = groupNormBackwardRef(xs, dims, ws, bs, dYs, 1e-5, false);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, shape);
      const w = e.tensor(ws, [8]);
      const b = e.tensor(bs, [8]);
      const f = groupNormForward(e, x, 4, w, b, 1e-5);
      const g = groupNormBackward(e, x, 4, w, b, f.mean, f.rstd, e.tensor(dYs, shape), { need });
      const want = { x: need.x ?? true, weight: need.weight ?? true, bias: need.bias ?? true };
      expect([g.dX !== null, g.dW !== null, g.dB !== null]).toEqual([want.x, want.weight, want.bias]);
      if (g.dX) assertClose(await g.dX.read(), refG.dX, TOL_GRAD, 'dX');
      if (g.dW) assertClose(await g.dW.read(), refG.dW, TOL_GRAD, 'dW');
      if (g.dB) assertClose(await g.dB.read(), refG.dB, TOL_GRAD, 'dB');
    });
  });

  it('is numerically stable for inputs with a large mean (1000 ± 1)', async () => {
    const e = await testEngine();
    const shape = [2, 8, 10, 10];
    const dims = dimsOf(shape, 4);
    const r = rng(1000);
    const xs = r.normals(1600).map((v) => 1000 + v);
    const ws = r.normals(8);
    const bs = r.normals(8);
    const dYs = r.normals(1600);
    const ref = groupNormForwardRef(xs, dims, ws, bs);
    const refG = groupNormBackwardRef(xs, dims, ws, bs, dYs);
    // The tolerance is meaningful: E[x²] − E[x]² accumulated in fp32 misses σ² by far more.
    const n = 400;
    let worst = 0;
    for (let bg = 0; bg < 4; bg++) {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const v = xs[bg * n + i];
        s = Math.fround(s + v);
        s2 = Math.fround(s2 + Math.fround(v * v));
      }
      const m = Math.fround(s / n);
      const naiveRstd = 1 / Math.sqrt(Math.max(Math.fround(s2 / n - m * m), 0) + 1e-5);
      worst = Math.max(worst, Math.abs(naiveRstd - ref.rstd[bg]) / ref.rstd[bg]);
    }
    expect(worst).toBeGreaterThan(1e-2);
    for (const variant of ['naive', 'tuned'] as NormVariant[]) {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, shape);
        const w = e.tensor(ws, [8]);
        const b = e.tensor(bs, [8]);
        const dY = e.tensor(dYs, shape);
        const f = groupNormForward(e, x, 4, w, b, 1e-5, { variant });
        // rstd ≈ 1 and x̂ = O(1): the only fp32 error left is rounding of x − μ near 1000.
        assertClose(await f.rstd.read(), ref.rstd, { rtol: 1e-4, atol: 0 }, `rstd (${variant})`);
        assertClose(await f.y.read(), ref.y, { rtol: 1e-4, atol: 1e-5 }, `y (${variant})`);
        const g = groupNormBackward(e, x, 4, w, b, f.mean, f.rstd, dY, { variant });
        assertClose(await g.dX!.read(), refG.dX, { rtol: 1e-4, atol: 1e-5 }, `dX (${variant})`);
        assertClose(await g.dW!.read(), refG.dW, { rtol: 1e-4, atol: 1e-5 }, `dW (${variant})`);
      });
    }
  });

  it('records on the tape: x, weight and bias get gradients and nothing leaks', async () => {
    const e = await testEngine();
    const shape = [2, 6, 3, 5];
    const dims = dimsOf(shape, 3);
    const r = rng(21);
    const xs = r.normals(180, 2);
    const ws = r.normals(6);
    const bs = r.normals(6);
    const dYs = r.normals(180);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, shape, 'x');
    const w = e.parameter(ws, [6], 'w');
    const b = e.parameter(bs, [6], 'b');
    const y = e.scope(() => groupNorm(x, 3, w, b, 1e-5, { silu: true }));
    expect(y.shape).toEqual(shape);
    const dY = e.tensor(dYs, shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const ref = groupNormBackwardRef(xs, dims, ws, bs, dYs, 1e-5, true);
    assertClose(await x.grad!.read(), ref.dX, TOL_GRAD, 'x.grad');
    assertClose(await w.grad!.read(), ref.dW, TOL_GRAD, 'w.grad');
    assertClose(await b.grad!.read(), ref.dB, TOL_GRAD, 'b.grad');
    for (const t of [x, w, b]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('computes only the gradients that are needed, and frees the statistics without a tape', async () => {
    const e = await testEngine();
    const r = rng(4);
    const before = e.pool.getStats().liveBytes;
    const x = e.tensor(r.normals(40), [2, 4, 5]);
    const w = e.parameter(r.normals(4), [4], 'w');
    const b = e.tensor(r.normals(4), [4]);
    const y = groupNorm(x, 2, w, b);
    const dY = e.tensor(r.normals(40), [2, 4, 5]);
    e.backward(y, dY);
    expect(w.grad).not.toBeNull();
    expect(x.grad).toBeNull();
    const ref = groupNormBackwardRef(
      await x.read(),
      dimsOf([2, 4, 5], 2),
      await w.read(),
      await b.read(),
      await dY.read(),
    );
    assertClose(await w.grad!.read(), ref.dW, TOL_GRAD, 'w.grad');
    const z = e.noGrad(() => groupNorm(x, 2, w, b));
    for (const t of [x, w, b, y, dY, z]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects bad shapes and dtypes', async () => {
    const e = await testEngine();
    e.scope(() => {
      const x = e.zeros([1, 6, 2]);
      const w = e.zeros([6]);
      expect(() => groupNorm(x, 4, w, w)).toThrow(/cannot be split/);
      expect(() => groupNorm(x, 3, e.zeros([5]), w)).toThrow(/weight must be/);
      expect(() => groupNorm(e.zeros([6]), 3, w, w)).toThrow(/\(B, C/);
      if (e.f16) expect(() => groupNorm(e.zeros([1, 6, 2], 'f16'), 3, w, w)).toThrow(/fp16 activations/);
    });
  });
});
