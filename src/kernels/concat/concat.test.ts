import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { concatBackwardRef, concatForwardRef, sliceBackwardRef, sliceForwardRef } from './concat-reference.ts';
import { concatBackward, concatForward, concatKernels, sliceBackward, sliceForward } from './concat-kernels.ts';
import { concat } from './concat.ts';
import { chunk, slice } from './slice.ts';

// Pure copies: exact. (A slice backward only adds zeros.)
const EXACT = { rtol: 0, atol: 0 };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('concat', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of concatKernels) await e.compile(k);
  });

  it('reference gradients match central finite differences', () => {
    const r = rng(1);
    const shapes = [
      [2, 3, 2],
      [2, 1, 2],
      [2, 4, 2],
    ];
    const xs = shapes.map((s) => f64(r.normals(size(s))));
    gradcheck(
      (xs) => concatForwardRef(xs, shapes, 1),
      (_xs, dY) => concatBackwardRef(dY, shapes, 1),
      xs,
    );
    gradcheck(
      ([x]) => sliceForwardRef(x, [3, 5, 2], 1, 1, 3),
      (_xs, dY) => [sliceBackwardRef(dY, [3, 5, 2], 1, 1, 3)],
      [f64(r.normals(30))],
    );
  });

  // Every axis of a 4-D tensor with odd sizes (axis 1 is the UNet skip connection), negative
  // axes, 1-D, and pieces larger than a workgroup.
  it.each<[string, number[][], number]>([
    [
      'axis 0',
      [
        [1, 3, 5, 7],
        [2, 3, 5, 7],
      ],
      0,
    ],
    [
      'axis 1 (channels)',
      [
        [2, 3, 5, 7],
        [2, 1, 5, 7],
        [2, 4, 5, 7],
      ],
      1,
    ],
    [
      'axis 2',
      [
        [2, 3, 1, 7],
        [2, 3, 6, 7],
      ],
      2,
    ],
    [
      'axis -1',
      [
        [2, 3, 5, 7],
        [2, 3, 5, 2],
        [2, 3, 5, 1],
      ],
      -1,
    ],
    ['1-D', [[5], [300], [1]], 0],
    [
      'large pieces',
      [
        [1, 37, 9, 11],
        [1, 29, 9, 11],
      ],
      1,
    ],
  ])('GPU forward and backward match the reference (%s)', async (_name, shapes, axis) => {
    const e = await testEngine();
    const r = rng(shapes.length * 10 + shapes[0].length);
    const data = shapes.map((s) => r.normals(size(s)));
    const a = axis < 0 ? axis + shapes[0].length : axis;
    await e.scopeAsync(async () => {
      const y = concatForward(
        e,
        shapes.map((s, i) => e.tensor(data[i], s)),
        axis,
      );
      const expected = concatForwardRef(data, shapes, a);
      assertClose(await y.read(), expected, EXACT, 'y');
      const dYs = r.normals(y.size);
      const dXs = concatBackward(e, e.tensor(dYs, y.shape), shapes, axis);
      const ref = concatBackwardRef(dYs, shapes, a);
      for (let i = 0; i < shapes.length; i++) {
        expect(dXs[i]!.shape).toEqual(shapes[i]);
        assertClose(await dXs[i]!.read(), ref[i], EXACT, `dX${i}`);
      }
    });
  });

  it.each<[number[], number, number, number]>([
    [[2, 5, 3, 7], 1, 1, 3],
    [[2, 5, 3, 7], 0, 1, 1],
    [[2, 5, 3, 7], 3, 6, 1],
    [[2, 5, 3, 7], -2, 0, 2],
    [[700], 0, 13, 600],
  ])(
    'slice: GPU forward and backward match the reference (%j axis %i from %i, %i long)',
    async (shape, axis, start, length) => {
      const e = await testEngine();
      const r = rng(start * 7 + length);
      const xs = r.normals(size(shape));
      const a = axis < 0 ? axis + shape.length : axis;
      await e.scopeAsync(async () => {
        const y = sliceForward(e, e.tensor(xs, shape), axis, start, length);
        expect(y.shape).toEqual(shape.map((d, k) => (k === a ? length : d)));
        assertClose(await y.read(), sliceForwardRef(xs, shape, a, start, length), EXACT, 'y');
        const dYs = r.normals(y.size);
        const dX = sliceBackward(e, e.tensor(dYs, y.shape), shape, axis, start, length);
        assertClose(await dX.read(), sliceBackwardRef(dYs, shape, a, start, length), EXACT, 'dX');
      });
    },
  );

  it('records on the tape: concat of parameters hands each its part of dY', async () => {
    const e = await testEngine();
    const r = rng(5);
    const shapes = [
      [2, 3, 4, 5],
      [2, 2, 4, 5],
    ];
    const data = shapes.map((s) => r.normals(size(s)));
    const before = e.pool.getStats().liveBytes;
    const a = e.parameter(data[0], shapes[0], 'a');
    const c = e.tensor(data[1], shapes[1]); // a constant: gets no gradient
    const y = e.scope(() => concat([a, c], 1));
    const dYs = r.normals(y.size);
    const dY = e.tensor(dYs, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    c.dispose();
    assertClose(await a.grad!.read(), concatBackwardRef(dYs, shapes, 1)[0], EXACT, 'a.grad');
    a.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('records on the tape: chunk, reorder with concat, backward undoes the reordering', async () => {
    const e = await testEngine();
    const r = rng(6);
    const shape = [2, 7, 3];
    const xs = r.normals(size(shape));
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, shape, 'x');
    const y = e.scope(() => {
      const parts = chunk(x, 3, 1);
      expect(parts.map((p) => p.shape[1])).toEqual([3, 3, 1]); // ⌈7/3⌉ = 3, the rest in the last
      return concat([parts[2], parts[0], parts[1]], 1);
    });
    // Forward: x's channels 6 | 0 1 2 | 3 4 5.
    const order = [6, 0, 1, 2, 3, 4, 5];
    const yRef = concatForwardRef(
      order.map((c) => sliceForwardRef(xs, shape, 1, c, 1)),
      order.map(() => [2, 1, 3]),
      1,
    );
    assertClose(await y.read(), yRef, EXACT, 'y');
    const dYs = r.normals(y.size);
    const dY = e.tensor(dYs, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    // x.grad channel c = dY channel order.indexOf(c).
    const pieces = concatBackwardRef(
      dYs,
      order.map(() => [2, 1, 3]),
      1,
    );
    const xGradRef = concatForwardRef(
      [0, 1, 2, 3, 4, 5, 6].map((c) => pieces[order.indexOf(c)]),
      order.map(() => [2, 1, 3]),
      1,
    );
    assertClose(await x.grad!.read(), xGradRef, EXACT, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('slice on the tape: gradient is zero outside the slice', async () => {
    const e = await testEngine();
    const xs = rng(7).normals(24);
    const x = e.parameter(xs, [4, 6], 'x');
    await e.scopeAsync(async () => {
      const y = slice(x, -1, 2, 3);
      e.backward(y, e.full(y.shape, 1));
    });
    assertClose(await x.grad!.read(), sliceBackwardRef(new Float64Array(12).fill(1), [4, 6], 1, 2, 3), EXACT, 'x.grad');
    x.dispose();
  });

  it('rejects mismatched shapes, bad axes and ranges', async () => {
    const e = await testEngine();
    e.scope(() => {
      const x = e.zeros([2, 3, 4]);
      expect(() => concat([x, e.zeros([2, 3, 5])], 1)).toThrow(/does not match/);
      expect(() => concat([x, e.zeros([2, 3])], 0)).toThrow(/does not match/);
      expect(() => concat([x], 3)).toThrow(/out of range/);
      expect(() => concat([], 0)).toThrow(/no tensors/);
      expect(() => slice(x, 2, 3, 2)).toThrow(/out of range/);
      expect(() => slice(x, 0, 0, 0)).toThrow(/out of range/);
      expect(() => chunk(x, 0, 0)).toThrow(/bad count/);
      expect(() => concat([e.zeros([2], 'f16')], 0)).toThrow(/fp16 activations .* are for inference/);
    });
  });
});
