import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { erfcRef, erfRef, geluBackwardRef, geluForwardRef, geluRef } from './gelu-reference.ts';
import { geluBackward, geluForward, geluKernels, type GeluApproximate } from './gelu-kernels.ts';
import { gelu } from './gelu.ts';

const MODES: GeluApproximate[] = ['none', 'tanh'];
// fp32 kernels vs float64: a few ulps of the largest value (|x| ≤ ~16 here).
const TOL = { rtol: 2e-6, atol: 1e-6 };

describe('gelu', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of geluKernels) await e.compile(k);
  });

  it('reference erf and erfc match tabulated values to float64 precision', () => {
    // Values from an independent implementation (CPython's math.erf / math.erfc).
    const table: [number, number, number][] = [
      [0.1, 0.1124629160182849, 0.8875370839817152],
      [0.5, 0.5204998778130465, 0.4795001221869535],
      [1, 0.8427007929497149, 0.15729920705028513],
      [2, 0.9953222650189527, 0.004677734981047265],
      [2.5, 0.999593047982555, 0.0004069520174449589],
      [3, 0.9999779095030014, 2.2090496998585438e-5],
      [5, 0.9999999999984626, 1.5374597944280351e-12],
      [10, 1, 2.088487583762545e-45],
    ];
    for (const [x, erf, erfc] of table) {
      expect(Math.abs(erfRef(x) - erf)).toBeLessThan(2e-16 * 4);
      expect(Math.abs(erfRef(-x) + erf)).toBeLessThan(2e-16 * 4);
      expect(Math.abs(erfcRef(x) - erfc) / erfc).toBeLessThan(1e-13);
      expect(Math.abs(erfcRef(-x) - (2 - erfc))).toBeLessThan(1e-15);
    }
  });

  it('reference GELU matches the textbook formulas (exact and tanh)', () => {
    // x·½(1 + erf(x/√2)) and ½x(1 + tanh(√(2/π)(x + 0.044715x³))) in CPython float64.
    const table: [number, number, number][] = [
      [-3, -0.00404969409489031, -0.0036373920817729943],
      [-1, -0.15865525393145707, -0.15880800939172324],
      [0.5, 0.34573123063700656, 0.34571400982514394],
      [1, 0.8413447460685429, 0.8411919906082768],
      [2, 1.9544997361036416, 1.954597694087775],
    ];
    for (const [x, exact, tanh] of table) {
      expect(Math.abs(geluRef(x) - exact)).toBeLessThan(1e-15);
      expect(Math.abs(geluRef(x, 'tanh') - tanh)).toBeLessThan(1e-15);
    }
  });

  it.each(MODES)('reference gradient (approximate=%s) matches central finite differences', (mode) => {
    const x = f64(rng(1).normals(41, 3));
    gradcheck(
      ([x]) => geluForwardRef(x, mode),
      ([x], dY) => [geluBackwardRef(x, dY, mode)],
      [x],
    );
  });

  // Odd sizes (a partial last vec4), sizes spanning several workgroups plus a partial one
  // of both implementations (scalar: 256 elements, vec4: 4096), and saturated inputs.
  it.each([[1], [7], [255], [1000], [9001]])('GPU forward and backward match the reference (n=%i)', async (n) => {
    const e = await testEngine();
    const r = rng(n);
    const xs = r.normals(n, 4);
    [-100, 100, -12, 16, 0].forEach((v, i) => i < n && (xs[i] = v));
    const dYs = r.normals(n);
    for (const mode of MODES) {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, [n]);
        const dY = e.tensor(dYs, [n]);
        const out: Record<string, Float32Array[]> = {};
        for (const impl of ['scalar', 'vec4'] as const) {
          out[impl] = [await geluForward(e, x, mode, impl).read(), await geluBackward(e, x, dY, mode, impl).read()];
          assertClose(out[impl][0], geluForwardRef(xs, mode), TOL, `${impl} y (${mode})`);
          assertClose(out[impl][1], geluBackwardRef(xs, dYs, mode), TOL, `${impl} dX (${mode})`);
        }
        assertClose(out.vec4[0], out.scalar[0], TOL, `vec4 vs scalar y (${mode})`);
        assertClose(out.vec4[1], out.scalar[1], TOL, `vec4 vs scalar dX (${mode})`);
      });
    }
  });

  it.each(MODES)('GELU (approximate=%s) keeps its relative accuracy in the negative tail', async (mode) => {
    const e = await testEngine();
    // gelu(−9) ≈ −1e-18: an absolute-error erf (or 1 + tanh) would get no digit right.
    const xs = Float32Array.from({ length: 61 }, (_, i) => -9 + 0.1 * i);
    for (const impl of ['scalar', 'vec4'] as const) {
      const y = await e.scopeAsync(() => geluForward(e, e.tensor(xs, [61]), mode, impl).read());
      xs.forEach((x, i) => {
        const want = geluRef(x, mode);
        // exp(−x²/2) in fp32 loses ~|x²/2|·ε relative: ≈ 3e-6 at x = −9 (measured ≤ 9e-6).
        expect(Math.abs(y[i] - want) / Math.abs(want), `${impl} x=${x}`).toBeLessThan(2e-5);
      });
    }
  });

  it('records on the tape: backward of gelu(x) reaches x.grad and frees everything', async () => {
    const e = await testEngine();
    const xs = rng(3).normals(10, 2);
    const dYs = rng(4).normals(10);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 5], 'x');
    const y = e.scope(() => gelu(x));
    expect(y.shape).toEqual([2, 5]);
    const dY = e.tensor(dYs, [2, 5]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), geluBackwardRef(xs, dYs), TOL, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
