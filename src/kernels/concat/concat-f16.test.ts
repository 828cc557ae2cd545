// concat and slice with fp16 activations (inference only): forwards against the references
// on fp16-rounded inputs and against the fp32 ops, at the normal limit and under a low
// binding limit — where runs of even length at even offsets are buffer copies and the others
// go through the kernel on aligned windows.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import { testEngine, testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { concatForwardRef, sliceForwardRef } from './concat-reference.ts';
import { concatForward, sliceForward } from './concat-kernels.ts';
import { concat } from './concat.ts';
import { slice } from './slice.ts';

// Copies: each fp16 value is widened to f32 and stored back to fp16, which is exact.
const EXACT = { rtol: 0, atol: 0 };
const LIMIT = 4096;
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('concat and slice with fp16 activations', () => {
  it.each([
    {
      what: 'odd runs (35 per channel)',
      shapes: [
        [2, 3, 5, 7],
        [2, 1, 5, 7],
        [2, 4, 5, 7],
      ],
      axis: 1,
      limit: undefined,
    },
    {
      what: 'odd runs above the limit: aligned windows',
      shapes: [
        [2, 30, 5, 7],
        [2, 9, 5, 7],
      ],
      axis: 1,
      limit: LIMIT,
    },
    {
      what: 'even runs above the limit: buffer copies',
      shapes: [
        [2, 24, 8, 8],
        [2, 8, 8, 8],
      ],
      axis: 1,
      limit: LIMIT,
    },
    {
      what: 'many short rows above the limit',
      shapes: [
        [1200, 3],
        [1200, 2],
      ],
      axis: 1,
      limit: LIMIT,
    },
  ])('$what', async ({ shapes, axis, limit }) => {
    const e = await testEngineWithF16();
    const r = rng(shapes.length * 100 + shapes[0][0]);
    const data = shapes.map((s) => roundToF16(r.normals(size(s))));
    const want = concatForwardRef(data, shapes, axis);
    e.setBindingLimit(limit);
    try {
      await e.scopeAsync(async () => {
        const xs = shapes.map((s, i) => e.tensor(data[i], s, { dtype: 'f16' }));
        const y = e.noGrad(() => concat(xs, axis));
        expect(y.dtype).toBe('f16');
        if (limit) expect(y.byteLength).toBeGreaterThan(limit);
        const got = await y.read();
        assertClose(got, want, EXACT, 'concat');
        const y32 = concatForward(
          e,
          shapes.map((s, i) => e.tensor(data[i], s)),
          axis,
        );
        assertClose(got, await y32.read(), EXACT, 'concat f16 vs f32');
        // Slices of the result: an odd start and length, and one that starts at a piece.
        const yData = roundToF16(want);
        for (const [start, length] of [
          [1, shapes[0][axis] - 2],
          [shapes[0][axis], y.shape[axis] - shapes[0][axis]],
        ]) {
          const s = e.noGrad(() => slice(y, axis, start, length));
          expect(s.dtype).toBe('f16');
          const sGot = await s.read();
          assertClose(sGot, sliceForwardRef(yData, y.shape, axis, start, length), EXACT, `slice ${start}+${length}`);
          const s32 = sliceForward(e, y32, axis, start, length);
          assertClose(sGot, await s32.read(), EXACT, `slice ${start}+${length} f16 vs f32`);
        }
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('refuses fp16 activations while gradients are recorded, and mixed dtypes', async () => {
    const e = await testEngine();
    e.scope(() => {
      const h = e.zeros([2, 3], 'f16');
      expect(() => concat([h, h], 0)).toThrow(/concat: fp16 activations .* are for inference/);
      expect(() => slice(h, 1, 0, 2)).toThrow(/slice: fp16 activations .* are for inference/);
      expect(() => e.noGrad(() => concat([h, e.zeros([2, 3])], 0))).toThrow(/concat: activations of mixed dtypes/);
    });
  });
});
