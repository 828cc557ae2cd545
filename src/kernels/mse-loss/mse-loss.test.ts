import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { mseBackwardRef, mseForwardRef } from './mse-loss-reference.ts';
import { mseLossBackward, mseLossForward, mseLossKernels, type MseReduction } from './mse-loss-kernels.ts';
import { mseLoss } from './mse-loss.ts';

const REDUCTIONS: MseReduction[] = ['mean', 'sum'];

describe('mseLoss', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of mseLossKernels) await e.compile(k);
  });

  it('reference computes the mean and the sum of squared errors', () => {
    expect(mseForwardRef([1, 2, 3], [0, 0, 1], 'sum')).toBe(9);
    expect(mseForwardRef([1, 2, 3], [0, 0, 1])).toBe(3);
  });

  it.each(REDUCTIONS)('reference gradient (%s) matches central finite differences', (reduction) => {
    const pred = f64(rng(1).normals(23));
    const target = f64(rng(2).normals(23));
    gradcheck(
      ([p, t]) => [mseForwardRef(p, t, reduction)],
      ([p, t], dL) => mseBackwardRef(p, t, dL[0], reduction),
      [pred, target],
    );
  });

  // Odd sizes; 5000 and 100003 split into 2 and 25 chunks (a second pass adds them).
  it.each([[1], [7], [1000], [5000], [100003]])('GPU forward and backward match the reference (n=%i)', async (n) => {
    const e = await testEngine();
    const ps = rng(n).normals(n);
    const ts = rng(n + 1).normals(n);
    for (const reduction of REDUCTIONS) {
      await e.scopeAsync(async () => {
        const pred = e.tensor(ps, [n]);
        const target = e.tensor(ts, [n]);
        const loss = mseLossForward(e, pred, target, reduction);
        expect(loss.shape).toEqual([1]);
        // fp32 tree sum of n positive terms: relative error ≲ log2(n)·ε.
        assertClose(await loss.read(), [mseForwardRef(ps, ts, reduction)], { rtol: 2e-6, atol: 0 }, `L (${reduction})`);
        const [dP, dT] = mseLossBackward(e, pred, target, e.tensor([0.7], [1]), reduction);
        const [dPRef, dTRef] = mseBackwardRef(ps, ts, 0.7, reduction);
        assertClose(await dP!.read(), dPRef, { rtol: 1e-6, atol: 0 }, `dPred (${reduction})`);
        assertClose(await dT!.read(), dTRef, { rtol: 1e-6, atol: 0 }, `dTarget (${reduction})`);
      });
    }
  });

  it('rejects mismatched shapes', async () => {
    const e = await testEngine();
    e.scope(() => expect(() => mseLossForward(e, e.zeros([2, 3]), e.zeros([3, 2]))).toThrow(/shapes differ/));
  });

  it('records on the tape: the loss reaches pred.grad (and target.grad only when it requires grad)', async () => {
    const e = await testEngine();
    const shape = [2, 4, 3, 3];
    const ps = rng(3).normals(72);
    const ts = rng(4).normals(72);
    const before = e.pool.getStats().liveBytes;
    const pred = e.parameter(ps, shape, 'pred');
    const [dPRef, dTRef] = mseBackwardRef(ps, ts, 1);
    await e.scopeAsync(async () => {
      const loss = mseLoss(pred, e.tensor(ts, shape));
      expect(loss.shape).toEqual([1]);
      e.backward(loss);
    });
    assertClose(await pred.grad!.read(), dPRef, { rtol: 1e-6 }, 'pred.grad');
    const target = e.parameter(ts, shape, 'target');
    await e.scopeAsync(async () => e.backward(mseLoss(pred, target, 'mean')));
    // pred.grad accumulated twice.
    assertClose(
      await pred.grad!.read(),
      dPRef.map((g) => 2 * g),
      { rtol: 1e-6 },
      'pred.grad (accumulated)',
    );
    assertClose(await target.grad!.read(), dTRef, { rtol: 1e-6 }, 'target.grad');
    pred.dispose();
    target.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
