import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { quickGeluBackwardRef, quickGeluForwardRef } from './quick-gelu-reference.ts';
import { quickGeluBackward, quickGeluForward, quickGeluKernels } from './quick-gelu-kernels.ts';
import { quickGelu } from './quick-gelu.ts';

// fp32 vs float64: a few ulps of the largest value (|x| ≤ ~16 here).
const TOL = { rtol: 1e-6, atol: 1e-6 };

describe('quickGelu', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of quickGeluKernels) await e.compile(k);
  });

  it('reference matches x·σ(1.702x) at known points', () => {
    // 1·σ(1.702) and −1·σ(−1.702) in CPython float64.
    assertClose(quickGeluForwardRef([0, 1, -1]), [0, 0.8457957, -0.1542043], { rtol: 0, atol: 1e-7 }, 'y');
  });

  it('reference gradient matches central finite differences', () => {
    const x = f64(rng(1).normals(37, 3));
    gradcheck(
      ([x]) => quickGeluForwardRef(x),
      ([x], dY) => [quickGeluBackwardRef(x, dY)],
      [x],
    );
  });

  // Odd sizes (a partial last vec4), sizes spanning several workgroups plus a partial one
  // of both implementations (scalar: 256 elements, vec4: 4096), and saturated inputs.
  it.each([[1], [7], [255], [1000], [9001]])('GPU forward and backward match the reference (n=%i)', async (n) => {
    const e = await testEngine();
    const r = rng(n);
    const xs = r.normals(n, 4);
    [-100, 100, 16].forEach((v, i) => i < n && (xs[i] = v));
    const dYs = r.normals(n);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [n]);
      const dY = e.tensor(dYs, [n]);
      const out: Record<string, Float32Array[]> = {};
      for (const impl of ['scalar', 'vec4'] as const) {
        out[impl] = [await quickGeluForward(e, x, impl).read(), await quickGeluBackward(e, x, dY, impl).read()];
        assertClose(out[impl][0], quickGeluForwardRef(xs), TOL, `${impl} y`);
        assertClose(out[impl][1], quickGeluBackwardRef(xs, dYs), TOL, `${impl} dX`);
      }
      assertClose(out.vec4[0], out.scalar[0], TOL, 'vec4 vs scalar y');
      assertClose(out.vec4[1], out.scalar[1], TOL, 'vec4 vs scalar dX');
    });
  });

  it('records on the tape: backward of quickGelu(x) reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(10, 2);
    const dYs = rng(4).normals(10);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 5], 'x');
    const y = e.scope(() => quickGelu(x));
    expect(y.shape).toEqual([2, 5]);
    const dY = e.tensor(dYs, [2, 5]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), quickGeluBackwardRef(xs, dYs), TOL, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
