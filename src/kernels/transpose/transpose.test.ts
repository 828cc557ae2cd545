import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { transposeBackwardRef, transposeForwardRef } from './transpose-reference.ts';
import { canonicalPermutation, transposeBackward, transposeForward, transposeKernels } from './transpose-kernels.ts';
import { transpose } from './transpose.ts';

// Pure data movement: exact.
const EXACT = { rtol: 0, atol: 0 };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('transpose', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of transposeKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences', () => {
    const shape = [2, 3, 4];
    gradcheck(
      ([x]) => transposeForwardRef(x, shape, [2, 0, 1]),
      (_xs, dY) => [transposeBackwardRef(dY, shape, [2, 0, 1])],
      [f64(rng(1).normals(24))],
    );
  });

  it('canonical form drops size-1 axes and merges axes that move together', () => {
    expect(canonicalPermutation([2, 3, 4, 5], [0, 2, 3, 1])).toEqual({ shape: [2, 3, 20], perm: [0, 2, 1] });
    expect(canonicalPermutation([2, 3, 4, 5], [0, 3, 1, 2])).toEqual({ shape: [2, 12, 5], perm: [0, 2, 1] });
    expect(canonicalPermutation([1, 3, 1, 5], [2, 3, 0, 1])).toEqual({ shape: [3, 5], perm: [1, 0] });
    expect(canonicalPermutation([2, 3, 4], [0, 1, 2])).toEqual({ shape: [24], perm: [0] });
    expect(canonicalPermutation([1, 1], [1, 0])).toEqual({ shape: [], perm: [] });
  });

  // (B, C, H, W) ↔ (B, HW, C) both ways, a full reversal (two batch axes), 2-D, 5-D that
  // collapses to ≤ 4, the identity and an all-ones tensor; sizes across partial 32-tiles.
  it.each<[number[], number[]]>([
    [
      [2, 5, 7, 9],
      [0, 2, 3, 1],
    ],
    [
      [2, 7, 9, 5],
      [0, 3, 1, 2],
    ],
    [
      [3, 5, 7, 2],
      [3, 2, 1, 0],
    ],
    [
      [3, 5, 7, 2],
      [1, 0, 3, 2],
    ],
    [
      [2, 3, 4, 5],
      [2, 0, 3, 1],
    ],
    [
      [37, 45],
      [1, 0],
    ],
    [
      [1, 70, 33],
      [0, 2, 1],
    ],
    [
      [2, 3, 4, 5, 6],
      [0, 1, 4, 2, 3],
    ],
    [
      [3, 4, 5],
      [0, 1, 2],
    ],
    [
      [1, 1, 1],
      [2, 0, 1],
    ],
    [[6], [0]],
  ])('GPU forward and backward match the reference (%j perm %j)', async (shape, perm) => {
    const e = await testEngine();
    const r = rng(size(shape) + perm[0]);
    const xs = r.normals(size(shape));
    const dYs = r.normals(size(shape));
    const outShape = perm.map((d) => shape[d]);
    const yRef = transposeForwardRef(xs, shape, perm);
    const dXRef = transposeBackwardRef(dYs, shape, perm);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, shape);
      const dY = e.tensor(dYs, outShape);
      for (const impl of ['auto', 'naive'] as const) {
        const y = transposeForward(e, x, perm, impl);
        expect(y.shape).toEqual(outShape);
        assertClose(await y.read(), yRef, EXACT, `${impl} y`);
        const dX = transposeBackward(e, dY, perm, impl);
        expect(dX.shape).toEqual(shape);
        assertClose(await dX.read(), dXRef, EXACT, `${impl} dX`);
      }
    });
  });

  it('tiled path spans several tiles per axis and batch', async () => {
    const e = await testEngine();
    const shape = [2, 3, 65, 40]; // 65 = 2 full 32-tiles + 1
    const perm = [1, 0, 3, 2];
    const xs = rng(9).normals(size(shape));
    await e.scopeAsync(async () => {
      const y = transposeForward(e, e.tensor(xs, shape), perm);
      assertClose(await y.read(), transposeForwardRef(xs, shape, perm), EXACT, 'y');
    });
  });

  it('records on the tape: (B, C, H, W) → (B, HW, C) and back, backward reaches x.grad', async () => {
    const e = await testEngine();
    const r = rng(4);
    const shape = [2, 3, 4, 5];
    const xs = r.normals(size(shape));
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, shape, 'x');
    const y = e.scope(() => transpose(x, [0, 2, 3, 1]).reshape([2, 20, 3]));
    const dYs = r.normals(y.size);
    const dY = e.tensor(dYs, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), transposeBackwardRef(dYs, shape, [0, 2, 3, 1]), EXACT, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects non-permutations, and fp16 while recording', async () => {
    const e = await testEngine();
    e.scope(() => {
      const x = e.zeros([2, 3, 4]);
      expect(() => transpose(x, [0, 1])).toThrow(/not a permutation/);
      expect(() => transpose(x, [0, 1, 1])).toThrow(/not a permutation/);
      expect(() => transpose(x, [0, 1, 3])).toThrow(/not a permutation/);
      expect(() => transpose(e.zeros([2, 3, 4, 5, 6]), [4, 3, 2, 1, 0])).toThrow(/more than 4 axes/);
      expect(() => transpose(e.zeros([2, 3], 'f16'), [1, 0])).toThrow(
        /transpose: fp16 activations .* are for inference/,
      );
    });
  });
});
