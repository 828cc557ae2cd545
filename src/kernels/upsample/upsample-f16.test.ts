// upsampleNearest2x with fp16 activations (inference only): the forward against the reference
// on fp16-rounded inputs and against the fp32 op, at the normal limit and over plane ranges
// under a low binding limit.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import { testEngine, testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { upsampleNearest2xForwardRef } from './upsample-reference.ts';
import { upsampleNearest2xForward } from './upsample-kernels.ts';
import { upsampleNearest2x } from './upsample.ts';

// A copy: each fp16 value is widened to f32 and stored back to fp16, which is exact.
const EXACT = { rtol: 0, atol: 0 };
const LIMIT = 4096;

describe('upsampleNearest2x with fp16 activations', () => {
  it.each([
    [[2, 3, 5, 7], undefined],
    [[1, 6, 8, 12], LIMIT], // y is 9216 bytes: plane ranges of 4 and 2 planes
  ])('matches the reference on fp16-rounded inputs (%j, binding limit %s)', async (shape, limit) => {
    const e = await testEngineWithF16();
    const [B, C, H, W] = shape;
    const xs = roundToF16(rng(B + C + H + W).normals(B * C * H * W));
    const want = upsampleNearest2xForwardRef(xs, B * C, H, W);
    e.setBindingLimit(limit);
    try {
      await e.scopeAsync(async () => {
        const y = e.noGrad(() => upsampleNearest2x(e.tensor(xs, shape, { dtype: 'f16' })));
        expect(y.dtype).toBe('f16');
        expect(y.shape).toEqual([B, C, 2 * H, 2 * W]);
        if (limit) expect(y.byteLength).toBeGreaterThan(limit);
        const got = await y.read();
        assertClose(got, want, EXACT, 'y');
        assertClose(got, await upsampleNearest2xForward(e, e.tensor(xs, shape)).read(), EXACT, 'f16 vs f32');
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('refuses fp16 activations while gradients are recorded', async () => {
    const e = await testEngine();
    e.scope(() => {
      expect(() => upsampleNearest2x(e.zeros([1, 1, 2, 2], 'f16'))).toThrow(
        /upsampleNearest2x: fp16 activations .* are for inference/,
      );
    });
  });
});
