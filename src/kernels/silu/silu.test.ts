import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { siluBackwardRef, siluForwardRef } from './silu-reference.ts';
import { siluBackward, siluForward, siluKernels } from './silu-kernels.ts';
import { silu } from './silu.ts';

describe('silu', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of siluKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences', () => {
    const x = f64(rng(1).normals(37, 3));
    gradcheck(
      ([x]) => siluForwardRef(x),
      ([x], dY) => [siluBackwardRef(x, dY)],
      [x],
    );
  });

  // Odd sizes (a partial last vec4), and sizes spanning several workgroups plus a partial
  // one of both implementations (scalar: 256 elements, vec4: 4096).
  it.each([[1], [7], [255], [1000], [9001]])('GPU forward and backward match the reference (n=%i)', async (n) => {
    const e = await testEngine();
    const r = rng(n);
    const xs = r.normals(n, 4);
    xs[0] = -100; // exp overflow side
    const dYs = r.normals(n);
    const yRef = siluForwardRef(xs);
    const dXRef = siluBackwardRef(xs, dYs);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [n]);
      const dY = e.tensor(dYs, [n]);
      const out: Record<string, Float32Array[]> = {};
      for (const impl of ['scalar', 'vec4'] as const) {
        out[impl] = [await siluForward(e, x, impl).read(), await siluBackward(e, x, dY, impl).read()];
        assertClose(out[impl][0], yRef, { rtol: 1e-6, atol: 1e-6 }, `${impl} y`);
        assertClose(out[impl][1], dXRef, { rtol: 1e-6, atol: 1e-6 }, `${impl} dX`);
      }
      assertClose(out.vec4[0], out.scalar[0], { rtol: 1e-6, atol: 1e-6 }, 'vec4 vs scalar y');
      assertClose(out.vec4[1], out.scalar[1], { rtol: 1e-6, atol: 1e-6 }, 'vec4 vs scalar dX');
    });
  });

  it('records on the tape: backward of silu(x) with dY = 1 reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(10);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 5], 'x');
    const y = e.scope(() => silu(x));
    expect(y.shape).toEqual([2, 5]);
    const dY = e.full([2, 5], 1);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), siluBackwardRef(xs, new Float64Array(10).fill(1)), { rtol: 1e-6 }, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before); // nothing leaked
  });
});
