import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { layerNormBackwardRef, layerNormForwardRef } from './layer-norm-reference.ts';
import {
  layerNormBackward,
  layerNormForward,
  layerNormKernels,
  layerNormSubgroupKernels,
  type NormVariant,
} from './layer-norm-kernels.ts';
import { layerNorm } from './layer-norm.ts';

// fp32 GPU vs float64 reference, relative to the largest |expected| (see test/close.ts).
const TOL_Y = { rtol: 1e-5, atol: 1e-5 };
const TOL_STATS = { rtol: 1e-5, atol: 1e-6 };
const TOL_GRAD = { rtol: 1e-4, atol: 1e-5 };

describe('layerNorm', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of layerNormKernels) await e.compile(k);
    if (e.info.subgroups) for (const k of layerNormSubgroupKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences', () => {
    const r = rng(10);
    const x = f64(r.normals(3 * 7, 2));
    const w = f64(r.normals(7));
    const b = f64(r.normals(7));
    gradcheck(
      ([x, w, b]) => layerNormForwardRef(x, 7, w, b).y,
      ([x, w], dY) => {
        const g = layerNormBackwardRef(x, 7, w, dY);
        return [g.dX, g.dW, g.dB];
      },
      [x, w, b],
      { rtol: 1e-5, atol: 1e-7 },
    );
  });

  // Odd C; C above the workgroup size (naive: 256; tuned: 64 for 300 and 513, 128 for
  // 1028 = 257 vec4s, 256 for 2052 = 513 vec4s) so every row loops; a rank-3 input; C = 1
  // (zero variance); row/column counts that leave partial parameter-gradient chunks (64
  // rows) and tiles (64 columns).
  const cases: number[][] = [
    [1, 7],
    [3, 300],
    [2, 3, 513],
    [5, 1028],
    [2, 2052],
    [130, 12],
    [70, 65],
    [4, 1],
  ];
  it.each(cases)('GPU forward and backward match the reference (x=[%i, %i, …])', async (...shape) => {
    const e = await testEngine();
    const cols = shape[shape.length - 1];
    const size = shape.reduce((a, b) => a * b, 1);
    const r = rng(size);
    const xs = r.normals(size, 2).map((v) => v - 0.3);
    const ws = r.normals(cols);
    const bs = r.normals(cols);
    const dYs = r.normals(size);
    const ref = layerNormForwardRef(xs, cols, ws, bs);
    const refG = layerNormBackwardRef(xs, cols, ws, dYs);
    for (const variant of ['naive', 'tuned'] as NormVariant[]) {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, shape);
        const w = e.tensor(ws, [cols]);
        const b = e.tensor(bs, [cols]);
        const dY = e.tensor(dYs, shape);
        const { y, mean, rstd } = layerNormForward(e, x, w, b, 1e-5, { variant });
        expect(y.shape).toEqual(shape);
        expect(mean.shape).toEqual([size / cols]);
        assertClose(await y.read(), ref.y, TOL_Y, `y (${variant})`);
        assertClose(await mean.read(), ref.mean, TOL_STATS, `mean (${variant})`);
        assertClose(await rstd.read(), ref.rstd, TOL_STATS, `rstd (${variant})`);
        const g = layerNormBackward(e, x, w, mean, rstd, dY, { variant });
        assertClose(await g.dX!.read(), refG.dX, TOL_GRAD, `dX (${variant})`);
        assertClose(await g.dW!.read(), refG.dW, TOL_GRAD, `dW (${variant})`);
        assertClose(await g.dB!.read(), refG.dB, TOL_GRAD, `dB (${variant})`);
      });
    }
  });

  it('tuned (vec4, subgroups when present) and naive kernels agree', async () => {
    const e = await testEngine();
    const shape = [9, 520];
    const r = rng(5);
    await e.scopeAsync(async () => {
      const x = e.tensor(r.normals(9 * 520, 3), shape);
      const w = e.tensor(r.normals(520), [520]);
      const b = e.tensor(r.normals(520), [520]);
      const dY = e.tensor(r.normals(9 * 520), shape);
      const run = async (variant: NormVariant) => {
        const f = layerNormForward(e, x, w, b, 1e-5, { variant });
        const g = layerNormBackward(e, x, w, f.mean, f.rstd, dY, { variant });
        return Promise.all([f.y, f.rstd, g.dX!, g.dW!, g.dB!].map((t) => t.read()));
      };
      const naive = await run('naive');
      const tuned = await run('tuned');
      naive.forEach((n, i) => assertClose(tuned[i], n, { rtol: 1e-5, atol: 1e-6 }, `output ${i}`));
    });
  });

  it.each([[300], [256]])('is numerically stable for inputs with a large mean (1000 ± 1, C=%i)', async (cols) => {
    const e = await testEngine();
    const rows = 6;
    const r = rng(1000 + cols);
    const xs = r.normals(rows * cols).map((v) => 1000 + v);
    const ws = r.normals(cols);
    const bs = r.normals(cols);
    const dYs = r.normals(rows * cols);
    const ref = layerNormForwardRef(xs, cols, ws, bs);
    const refG = layerNormBackwardRef(xs, cols, ws, dYs);
    // The tolerance is meaningful: E[x²] − E[x]² accumulated in fp32 misses σ² by far more.
    let worst = 0;
    for (let row = 0; row < rows; row++) {
      let s = 0;
      let s2 = 0;
      for (let c = 0; c < cols; c++) {
        const v = xs[row * cols + c];
        s = Math.fround(s + v);
        s2 = Math.fround(s2 + Math.fround(v * v));
      }
      const m = Math.fround(s / cols);
      const naiveRstd = 1 / Math.sqrt(Math.max(Math.fround(s2 / cols - m * m), 0) + 1e-5);
      worst = Math.max(worst, Math.abs(naiveRstd - ref.rstd[row]) / ref.rstd[row]);
    }
    expect(worst).toBeGreaterThan(1e-2);
    for (const variant of ['naive', 'tuned'] as NormVariant[]) {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, [rows, cols]);
        const w = e.tensor(ws, [cols]);
        const b = e.tensor(bs, [cols]);
        const dY = e.tensor(dYs, [rows, cols]);
        const f = layerNormForward(e, x, w, b, 1e-5, { variant });
        // rstd ≈ 1 and x̂ = O(1): the only fp32 error left is rounding of x − μ near 1000.
        assertClose(await f.rstd.read(), ref.rstd, { rtol: 1e-4, atol: 0 }, `rstd (${variant})`);
        assertClose(await f.y.read(), ref.y, { rtol: 1e-4, atol: 1e-5 }, `y (${variant})`);
        const g = layerNormBackward(e, x, w, f.mean, f.rstd, dY, { variant });
        assertClose(await g.dX!.read(), refG.dX, { rtol: 1e-4, atol: 1e-5 }, `dX (${variant})`);
        assertClose(await g.dW!.read(), refG.dW, { rtol: 1e-4, atol: 1e-5 }, `dW (${variant})`);
      });
    }
  });

  it('records on the tape: x, weight and bias get gradients and nothing leaks', async () => {
    const e = await testEngine();
    const shape = [2, 3, 40];
    const r = rng(21);
    const xs = r.normals(240, 2);
    const ws = r.normals(40);
    const bs = r.normals(40);
    const dYs = r.normals(240);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, shape, 'x');
    const w = e.parameter(ws, [40], 'w');
    const b = e.parameter(bs, [40], 'b');
    const y = e.scope(() => layerNorm(x, w, b));
    expect(y.shape).toEqual(shape);
    const dY = e.tensor(dYs, shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const ref = layerNormBackwardRef(xs, 40, ws, dYs);
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
    const x = e.parameter(r.normals(30), [3, 10], 'x');
    const w = e.tensor(r.normals(10), [10]);
    const b = e.tensor(r.normals(10), [10]);
    const y = layerNorm(x, w, b);
    const dY = e.tensor(r.normals(30), [3, 10]);
    e.backward(y, dY);
    expect(x.grad).not.toBeNull();
    expect(w.grad).toBeNull();
    const ref = layerNormBackwardRef(await x.read(), 10, await w.read(), await dY.read());
    assertClose(await x.grad!.read(), ref.dX, TOL_GRAD, 'x.grad');
    const z = e.noGrad(() => layerNorm(x, w, b));
    for (const t of [x, w, b, y, dY, z]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects bad shapes and dtypes', async () => {
    const e = await testEngine();
    e.scope(() => {
      const x = e.zeros([2, 6]);
      const w = e.zeros([6]);
      expect(() => layerNorm(x, e.zeros([5]), w)).toThrow(/weight must be/);
      expect(() => layerNorm(x, w, e.zeros([6, 1]))).toThrow(/bias must be/);
      if (e.f16) expect(() => layerNorm(e.zeros([2, 6], 'f16'), w, w)).toThrow(/fp16 activations/);
    });
  });
});
