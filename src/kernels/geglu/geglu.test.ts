import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { geluForwardRef } from '../gelu/gelu-reference.ts';
import type { GeluApproximate } from '../gelu/gelu-kernels.ts';
import { gegluBackwardRef, gegluForwardRef } from './geglu-reference.ts';
import { gegluBackward, gegluForward, gegluKernels } from './geglu-kernels.ts';
import { geglu } from './geglu.ts';

const MODES: GeluApproximate[] = ['none', 'tanh'];
// fp32 h·gelu(g) vs float64: a few ulps of the largest value.
const TOL = { rtol: 2e-6, atol: 1e-6 };

describe('geglu', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of gegluKernels) await e.compile(k);
  });

  it('reference splits hidden | gate on the last axis', () => {
    const x = [2, -3, 0.5, 1]; // one row, F = 2: hidden (2, −3), gate (0.5, 1)
    const gate = geluForwardRef([0.5, 1]);
    assertClose(gegluForwardRef(x, 2), [2 * gate[0], -3 * gate[1]], { rtol: 1e-15, atol: 0 }, 'y');
  });

  it.each(MODES)('reference gradient (approximate=%s) matches central finite differences', (mode) => {
    const x = f64(rng(1).normals(3 * 2 * 5, 2));
    gradcheck(
      ([x]) => gegluForwardRef(x, 5, mode),
      ([x], dY) => [gegluBackwardRef(x, dY, 5, mode)],
      [x],
    );
  });

  // [rows…, 2F]: odd F, F = 1, outputs spanning several workgroups plus a partial one, and
  // F a multiple of 4 (the vec4 kernels: F = 4, 8, and 2048 vec4s > one workgroup's 1024).
  it.each([[[1, 2]], [[3, 14]], [[2, 5, 18]], [[7, 150]], [[2, 3, 1, 130]], [[3, 8]], [[2, 5, 16]], [[2, 4096, 8]]])(
    'GPU forward and backward match the reference (x %j)',
    async (shape) => {
      const e = await testEngine();
      const n = shape.reduce((a, b) => a * b, 1);
      const f = shape[shape.length - 1] / 2;
      const xs = rng(n).normals(n, 3);
      const dYs = rng(n + 1).normals(n / 2);
      const yShape = [...shape.slice(0, -1), f];
      for (const mode of MODES) {
        await e.scopeAsync(async () => {
          const x = e.tensor(xs, shape);
          const dY = e.tensor(dYs, yShape);
          const out: Record<string, Float32Array[]> = {};
          for (const impl of ['scalar', 'vec4'] as const) {
            const y = gegluForward(e, x, mode, impl);
            expect(y.shape).toEqual(yShape);
            const dX = gegluBackward(e, x, dY, mode, impl);
            expect(dX.shape).toEqual(shape);
            out[impl] = [await y.read(), await dX.read()];
            assertClose(out[impl][0], gegluForwardRef(xs, f, mode), TOL, `${impl} y (${mode})`);
            assertClose(out[impl][1], gegluBackwardRef(xs, dYs, f, mode), TOL, `${impl} dX (${mode})`);
          }
          assertClose(out.vec4[0], out.scalar[0], TOL, `vec4 vs scalar y (${mode})`);
          assertClose(out.vec4[1], out.scalar[1], TOL, `vec4 vs scalar dX (${mode})`);
        });
      }
    },
  );

  it('rejects an odd last dimension', async () => {
    const e = await testEngine();
    e.scope(() => expect(() => gegluForward(e, e.zeros([2, 3]))).toThrow(/even/));
  });

  it('records on the tape: backward of geglu(x) reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(24, 2);
    const dYs = rng(4).normals(12);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 3, 4], 'x');
    const y = e.scope(() => geglu(x));
    expect(y.shape).toEqual([2, 3, 2]);
    const dY = e.tensor(dYs, [2, 3, 2]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), gegluBackwardRef(xs, dYs, 2), TOL, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
