import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { axesReducedTo, planReduction } from './reduce-plan.ts';
import { meanBackwardRef, meanForwardRef, sumBackwardRef, sumForwardRef } from './reduce-reference.ts';
import { reduceKernels, reduceToShape, sumBackward, sumForward, sumForwardNaive } from './reduce-kernels.ts';
import { mean, sum } from './reduce.ts';

// fp32 sums of up to ~10⁴ normals vs float64: relative to the largest output.
const TOL = { rtol: 1e-5, atol: 1e-5 };

// [shape, axes, keepDims]: odd sizes; rows and columns split into chunks (r = 10007 > 4096,
// r = 300 > 128); interleaved reduced/kept axes; size-1 and empty axis sets (copies).
const cases: [number[], number[] | undefined, boolean][] = [
  [[7], undefined, false],
  [[3, 5, 7], [1], false],
  [[2, 3, 4, 5], [0, 2, 3], true],
  [[2, 3, 4, 5], [1, 3], false],
  [[3, 4, 5, 6, 2], [0, 2, 4], false],
  [[5, 300, 33], [1], true],
  [[2, 10007], [-1], false],
  [[600, 37], [0], false],
  [[4, 1, 6], [1], false],
  [[3, 5], [], false],
];

describe('reduce', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of reduceKernels) await e.compile(k);
  });

  it('plans axis groups as (outer, r, inner) steps, innermost first', () => {
    expect(planReduction([2, 3, 4, 5], [0, 2, 3])).toEqual([
      { outer: 6, r: 20, inner: 1 },
      { outer: 1, r: 2, inner: 3 },
    ]);
    expect(planReduction([2, 1, 4], [0, 1])).toEqual([{ outer: 1, r: 2, inner: 4 }]);
    expect(planReduction([2, 3], [])).toEqual([]);
    expect(axesReducedTo([2, 3, 4, 5], [3, 1, 1])).toEqual([0, 2, 3]);
    expect(axesReducedTo([2, 3], [2, 3])).toEqual([]);
    expect(() => axesReducedTo([2, 3], [2])).toThrow(/broadcast/);
  });

  it('reference gradients match central finite differences', () => {
    const shape = [3, 4, 5];
    const x = f64(rng(1).normals(60));
    for (const axes of [[1], [0, 2], undefined]) {
      gradcheck(
        ([x]) => sumForwardRef(x, shape, axes).y,
        (_, dY) => [sumBackwardRef(dY, shape, axes)],
        [x],
      );
      gradcheck(
        ([x]) => meanForwardRef(x, shape, axes, true).y,
        (_, dY) => [meanBackwardRef(dY, shape, axes)],
        [x],
      );
    }
  });

  it.each(cases)(
    'GPU sum forward and backward match the reference: %j axes %j keepDims %s',
    async (shape, axes, keepDims) => {
      const e = await testEngine();
      const n = shape.reduce((a, b) => a * b, 1);
      const xs = rng(n).normals(n);
      const ref = sumForwardRef(xs, shape, axes, keepDims, 0.5);
      const dYs = rng(n + 1).normals(ref.y.length);
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, shape);
        const y = sumForward(e, x, axes, keepDims, 0.5);
        expect(y.shape).toEqual(ref.shape);
        assertClose(await y.read(), ref.y, TOL, 'y');
        assertClose(await sumForwardNaive(e, x, axes, keepDims, 0.5).read(), ref.y, TOL, 'y (naive kernel)');
        const dX = sumBackward(e, e.tensor(dYs, ref.shape), shape, axes, 0.5);
        expect(dX.shape).toEqual(shape);
        assertClose(await dX.read(), sumBackwardRef(dYs, shape, axes, 0.5), { rtol: 1e-6, atol: 0 }, 'dX');
      });
    },
  );

  it('tuned and naive kernels agree on shapes that split into chunks', async () => {
    const e = await testEngine();
    for (const [shape, axes] of [
      [[3, 5000], [1]],
      [[700, 3, 65], [0]],
      [
        [9, 257, 31],
        [0, 2],
      ],
    ] as [number[], number[]][]) {
      const n = shape.reduce((a, b) => a * b, 1);
      await e.scopeAsync(async () => {
        const x = e.tensor(rng(n).uniforms(n, -1, 1), shape);
        assertClose(await sumForward(e, x, axes).read(), await sumForwardNaive(e, x, axes).read(), TOL, `${shape}`);
      });
    }
  });

  it('sums 1e6 elements to a scalar in two passes', async () => {
    const e = await testEngine();
    const n = 1_000_003;
    const xs = rng(5).uniforms(n);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [n]);
      const before = e.dispatchCount;
      const y = sumForward(e, x);
      expect(e.dispatchCount - before).toBe(2);
      expect(y.shape).toEqual([]);
      // Uniform [0,1) values: the sum is ≈ 5e5, fp32 tree error ≈ log2(n)·ε relative.
      assertClose(await y.read(), sumForwardRef(xs, [n]).y, { rtol: 1e-6, atol: 0 }, 'sum');
    });
  });

  it('reduceToShape undoes broadcasting', async () => {
    const e = await testEngine();
    const shape = [2, 3, 4, 5];
    const xs = rng(9).normals(120);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, shape);
      for (const [target, axes] of [
        [
          [3, 1, 1],
          [0, 2, 3],
        ],
        [[5], [0, 1, 2]],
        [
          [2, 3, 1, 1],
          [2, 3],
        ],
        [[1], [0, 1, 2, 3]],
      ] as [number[], number[]][]) {
        const y = reduceToShape(e, x, target, -1);
        expect(y.shape).toEqual(target);
        assertClose(await y.read(), sumForwardRef(xs, shape, axes, false, -1).y, TOL, `to [${target}]`);
      }
    });
  });

  it('records on the tape: sum(mean(x, [1], keepDims)) reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(24);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 3, 4], 'x');
    const y = e.scope(() => {
      const m = mean(x, [1], true);
      expect(m.shape).toEqual([2, 1, 4]);
      return sum(m, [0, 2]);
    });
    expect(y.shape).toEqual([1]);
    e.backward(y);
    y.dispose();
    assertClose(await x.grad!.read(), new Float64Array(24).fill(1 / 3), { rtol: 1e-6 }, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
