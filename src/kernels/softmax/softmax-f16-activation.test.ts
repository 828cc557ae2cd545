// softmax of fp16 activations (inference; the models' attention has its own fused softmax,
// this is the op for anything else): x read and y stored as f16 by the engine's half-storage
// rewrite, the max and sum in f32, against the float64 reference on the same fp16-rounded
// x, both workgroup sizes, and in row ranges under a low binding limit.
//
// Tolerance: the reference sees exactly the stored x and the kernel computes in f32 (≤ 1e-5
// of scale, softmax.test.ts); y is rounded once on store, by ≤ 2⁻¹¹ ≈ 4.9e-4 of y ≤ 1. So
// rtol 1e-3 of scale (observed ≤ 3.5e-4 on lavapipe) + atol 1e-6.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { softmaxForwardRef } from './softmax-reference.ts';
import { softmaxForward } from './softmax-kernels.ts';
import { softmax } from './softmax.ts';

const TOL = { rtol: 1e-3, atol: 1e-6 };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function check(e: Engine, shape: number[], seed: number): Promise<void> {
  const n = shape[shape.length - 1];
  const xs = roundToF16(rng(seed).normals(size(shape), 3));
  const ref = softmaxForwardRef(xs, n);
  await e.scopeAsync(async () => {
    const y = e.noGrad(() => softmax(e.tensor(xs, shape, { dtype: 'f16' })));
    expect(y.dtype).toBe('f16');
    const got = await y.read();
    assertClose(got, ref, TOL, `y [${shape}]`);
    assertClose(got, await softmaxForward(e, e.tensor(xs, shape)).read(), TOL, `f16 y vs f32 y [${shape}]`);
  });
}

describe('softmax of fp16 activations', () => {
  // Rows shorter and longer than the 64 workgroup, one on the 256 workgroup (n > 1024).
  it.each([[[3, 7]], [[2, 5, 77]], [[3, 1000]], [[2, 1025]]])('matches the reference (shape %j)', async (shape) => {
    await check(await testEngineWithF16(), shape, size(shape));
  });

  it('in row ranges under a low binding limit', async () => {
    const e = await testEngineWithF16();
    const limit = 4096;
    e.setBindingLimit(limit);
    try {
      // 40 rows of 128 halves (256 bytes each, aligned): 10240 bytes.
      expect(40 * 128 * 2).toBeGreaterThan(limit);
      await check(e, [40, 128], 5);
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('refuses fp16 activations while gradients are recorded', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      expect(() => softmax(e.zeros([2, 3], 'f16'))).toThrow(/softmax: fp16 activations .* are for inference/);
    });
  });
});
