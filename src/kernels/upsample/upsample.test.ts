import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { upsampleNearest2xBackwardRef, upsampleNearest2xForwardRef } from './upsample-reference.ts';
import { upsampleKernels, upsampleNearest2xBackward, upsampleNearest2xForward } from './upsample-kernels.ts';
import { upsampleNearest2x } from './upsample.ts';

// The forward copies (exact); the backward adds four fp32 values.
const EXACT = { rtol: 0, atol: 0 };
const SUM4 = { rtol: 1e-6, atol: 1e-6 };

describe('upsampleNearest2x', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of upsampleKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences', () => {
    const x = f64(rng(1).normals(2 * 3 * 3 * 5));
    gradcheck(
      ([x]) => upsampleNearest2xForwardRef(x, 6, 3, 5),
      (_xs, dY) => [upsampleNearest2xBackwardRef(dY, 6, 3, 5)],
      [x],
    );
  });

  // Odd sizes, a single pixel, and more pixels than one workgroup with a partial last one.
  it.each([
    [1, 1, 1, 1],
    [2, 3, 5, 7],
    [1, 2, 17, 33],
    [2, 1, 3, 1],
  ])('GPU forward and backward match the reference (%i×%i×%i×%i)', async (B, C, H, W) => {
    const e = await testEngine();
    const r = rng(B * 1000 + C * 100 + H * 10 + W);
    const xs = r.normals(B * C * H * W);
    const dYs = r.normals(B * C * 4 * H * W);
    await e.scopeAsync(async () => {
      const y = upsampleNearest2xForward(e, e.tensor(xs, [B, C, H, W]));
      expect(y.shape).toEqual([B, C, 2 * H, 2 * W]);
      assertClose(await y.read(), upsampleNearest2xForwardRef(xs, B * C, H, W), EXACT, 'y');
      const dX = upsampleNearest2xBackward(e, e.tensor(dYs, [B, C, 2 * H, 2 * W]));
      expect(dX.shape).toEqual([B, C, H, W]);
      assertClose(await dX.read(), upsampleNearest2xBackwardRef(dYs, B * C, H, W), SUM4, 'dX');
    });
  });

  it('records on the tape: backward reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const r = rng(3);
    const xs = r.normals(2 * 2 * 3 * 4);
    const dYs = r.normals(2 * 2 * 6 * 8);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 2, 3, 4], 'x');
    const y = e.scope(() => upsampleNearest2x(x));
    const dY = e.tensor(dYs, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), upsampleNearest2xBackwardRef(dYs, 4, 3, 4), SUM4, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects other ranks, and fp16 while recording gradients', async () => {
    const e = await testEngine();
    e.scope(() => {
      expect(() => upsampleNearest2x(e.zeros([2, 3, 4]))).toThrow(/B, C, H, W/);
      expect(() => upsampleNearest2x(e.zeros([1, 1, 2, 2], 'f16'))).toThrow(/fp16 activations .* are for inference/);
    });
  });
});
