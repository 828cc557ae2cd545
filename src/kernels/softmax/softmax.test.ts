import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { softmaxBackwardRef, softmaxForwardRef } from './softmax-reference.ts';
import { softmaxBackward, softmaxForward, softmaxKernels } from './softmax-kernels.ts';
import { softmax } from './softmax.ts';

// fp32 GPU vs float64 reference: y ∈ [0, 1] with row sums of 1, so a scale-relative bound
// of 1e-5 (≈ 100 ulp at 1.0) leaves room for the different summation order only.
const TOL = { rtol: 1e-5, atol: 1e-6 };

describe('softmax', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of softmaxKernels) await e.compile(k);
  });

  it('reference forward is a normalised, shift-invariant distribution', () => {
    const x = rng(2).normals(12, 3);
    const y = softmaxForwardRef(x, 4);
    for (let r = 0; r < 3; r++) expect(y[r * 4] + y[r * 4 + 1] + y[r * 4 + 2] + y[r * 4 + 3]).toBeCloseTo(1, 12);
    assertClose(
      softmaxForwardRef(
        Array.from(x, (v) => v + 1000),
        4,
      ),
      y,
      { rtol: 1e-12, atol: 0 },
      'shifted',
    );
  });

  it('reference gradient matches central finite differences', () => {
    const x = f64(rng(1).normals(3 * 7, 2));
    gradcheck(
      ([x]) => softmaxForwardRef(x, 7),
      ([x], dY) => [softmaxBackwardRef(softmaxForwardRef(x, 7), dY, 7)],
      [x],
    );
  });

  // Rows shorter than, equal to, and longer than both workgroup sizes (64 for n ≤ 1024,
  // 256 above, looping up to 8 times), odd lengths, and a single element.
  it.each([[[1, 1]], [[3, 7]], [[2, 5, 77]], [[4, 64]], [[3, 1000]], [[2, 1025]], [[2, 2049]]])(
    'GPU forward and backward match the reference (shape %j)',
    async (shape) => {
      const e = await testEngine();
      const n = shape[shape.length - 1];
      const size = shape.reduce((a, b) => a * b, 1);
      const r = rng(size);
      const xs = r.normals(size, 3);
      // Large logits would overflow exp without the max subtraction; the masked value that
      // attention uses must give exactly zero weight.
      xs[0] = 95;
      if (n > 2) xs[1] = -1e30;
      const dYs = r.normals(size);
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, shape);
        const y = softmaxForward(e, x);
        expect(y.shape).toEqual(shape);
        const ys = await y.read();
        const yRef = softmaxForwardRef(xs, n);
        assertClose(ys, yRef, TOL, 'y');
        if (n > 2) expect(ys[1]).toBe(0);
        const dY = e.tensor(dYs, shape);
        // Backward from the GPU's own y, compared with the reference backward from the reference y.
        assertClose(await softmaxBackward(e, y, dY).read(), softmaxBackwardRef(yRef, dYs, n), TOL, 'dX');
      });
    },
  );

  it('more rows than one grid dimension holds (70000 rows of 3)', async () => {
    const e = await testEngine();
    const rows = 70000;
    const xs = rng(5).normals(rows * 3);
    const dYs = rng(6).normals(rows * 3);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [rows, 3]);
      const y = softmaxForward(e, x);
      const yRef = softmaxForwardRef(xs, 3);
      assertClose(await y.read(), yRef, TOL, 'y');
      const dX = softmaxBackward(e, y, e.tensor(dYs, [rows, 3]));
      assertClose(await dX.read(), softmaxBackwardRef(yRef, dYs, 3), TOL, 'dX');
    });
  });

  it('rejects what it cannot do', async () => {
    const e = await testEngine();
    e.scope(() => {
      expect(() => softmax(e.zeros([2, 3], 'f16'))).toThrow(/softmax: fp16 activations .* are for inference/);
      expect(() => softmaxForward(e, e.zeros([0]))).toThrow(/non-empty/);
    });
  });

  it('records on the tape: backward of softmax(x) reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(2 * 9, 2);
    const dYs = rng(4).normals(2 * 9);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 9], 'x');
    const y = e.scope(() => softmax(x));
    expect(y.shape).toEqual([2, 9]);
    const dY = e.tensor(dYs, [2, 9]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const ref = softmaxBackwardRef(softmaxForwardRef(xs, 9), dYs, 9);
    assertClose(await x.grad!.read(), ref, TOL, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
