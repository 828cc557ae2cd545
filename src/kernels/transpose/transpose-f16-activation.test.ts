// transpose of fp16 activations (inference): the same kernels with x and y stored as f16
// (the engine's half-storage rewrite), for the permutations around the models' transformer
// blocks and attention heads, both kernels, and in ranges under a low binding limit. Pure
// data movement: exact against the reference on the fp16 values, and equal to the f32 result.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { transposeForwardRef } from './transpose-reference.ts';
import { transposeForward, type TransposeImpl } from './transpose-kernels.ts';
import { transpose } from './transpose.ts';

const EXACT = { rtol: 0, atol: 0 };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function check(e: Engine, shape: number[], perm: number[], seed: number, impl?: TransposeImpl): Promise<void> {
  const xs = roundToF16(rng(seed).normals(size(shape)));
  const ref = transposeForwardRef(xs, shape, perm);
  await e.scopeAsync(async () => {
    const x = e.tensor(xs, shape, { dtype: 'f16' });
    const y = e.noGrad(() => (impl ? transposeForward(e, x, perm, impl) : transpose(x, perm)));
    expect(y.dtype).toBe('f16');
    expect(y.shape).toEqual(perm.map((d) => shape[d]));
    const got = await y.read();
    const what = `[${shape}] by [${perm}] ${impl ?? ''}`;
    assertClose(got, ref, EXACT, what);
    assertClose(got, await transposeForward(e, e.tensor(xs, shape), perm).read(), EXACT, `f16 vs f32 ${what}`);
  });
}

describe('transpose of fp16 activations', () => {
  // (B, C, H, W) ↔ (B, HW, C) around transformer blocks (odd sizes: partial 32×32 tiles),
  // heads (B, N, H, D) → (B, H, N, D), a 2-D transpose, and an odd element count.
  it.each([
    [
      [2, 40, 5, 7],
      [0, 2, 3, 1],
    ],
    [
      [2, 35, 40],
      [0, 2, 1],
    ],
    [
      [2, 9, 3, 8],
      [0, 2, 1, 3],
    ],
    [
      [33, 65],
      [1, 0],
    ],
    [
      [3, 5, 7],
      [2, 1, 0],
    ],
  ])('matches the reference exactly, both kernels ([%j] by %j)', async (shape, perm) => {
    const e = await testEngineWithF16();
    for (const impl of [undefined, 'auto', 'naive'] as const) await check(e, shape, perm, size(shape), impl);
  });

  // 4 items of 32 × 48 halves (3072 bytes each): one item per range; and 129 items of 5 × 7
  // halves, the last range one item of an odd number of halves, written in place.
  it.each([
    { shape: [4, 32, 48], limit: 4096 },
    { shape: [129, 5, 7], limit: 8960 },
  ])('in ranges of the leading axis under a low binding limit ($shape)', async ({ shape, limit }) => {
    const e = await testEngineWithF16();
    expect(size(shape) * 2).toBeGreaterThan(limit);
    e.setBindingLimit(limit);
    try {
      const xs = roundToF16(rng(9).normals(size(shape)));
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, shape, { dtype: 'f16' });
        const y = e.noGrad(() => transpose(x, [0, 2, 1]));
        expect(y.dtype).toBe('f16');
        assertClose(await y.read(), transposeForwardRef(xs, shape, [0, 2, 1]), EXACT, 'split');
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('refuses fp16 activations while gradients are recorded', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const x = e.zeros([2, 3], 'f16');
      expect(() => transpose(x, [1, 0])).toThrow(
        /transpose: fp16 activations .* are for inference, inside engine.noGrad/,
      );
    });
  });
});
