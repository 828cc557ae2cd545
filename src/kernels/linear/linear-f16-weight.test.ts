// linear with an fp16 weight and f32 activations: the frozen-weight path of the real models.
// Both ways of reading the weight are checked — shader-f16 (array<f16>) where the adapter has
// it, and packed pairs (unpack2x16float) on a device created without it — for every matmul
// kernel, forward and dX, against the float64 reference on the same fp16-rounded weight.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { rewriteOperand, weightStore } from '../../engine/weight-variant.ts';
import { testEngine, testEngineWithoutF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { linearBackwardRef, linearForwardRef } from './linear-reference.ts';
import { linearBackward, linearForward, linearWeightKernels } from './linear-kernels.ts';
import { linear } from './linear.ts';

// Only the summation order differs from the reference (the weight is exactly the rounded one).
const TOL = { rtol: 2e-5, atol: 1e-6 };

// Scalar loads (odd in/out), vec4 loads (multiples of 4), partial tiles, a 64-wide tile.
const CASES = [
  { rows: 5, inF: 3, outF: 7, bias: true },
  { rows: 13, inF: 12, outF: 9, bias: false },
  { rows: 37, inF: 24, outF: 72, bias: true },
  { rows: 70, inF: 68, outF: 64, bias: false },
];

const engines: [string, () => Promise<Engine>][] = [
  ['shader-f16', testEngine],
  ['packed pairs (no shader-f16)', testEngineWithoutF16],
];

describe('linear with an fp16 weight', () => {
  it('rewrites the weight binding of a kernel (declaration and every access)', () => {
    const code =
      'var<storage, read> b: array<vec4<f32>>;\nfn f(i: u32) -> vec4f { return vec4f(b[(i + bb[2u]) / 4u]) + b[i]; }';
    const packed = rewriteOperand(code, 'b', 'f16p');
    expect(packed).toContain('var<storage, read> b: array<vec2<u32>>;');
    expect(packed).toContain('vec4f(b_ld(u32((i + bb[2u]) / 4u))) + b_ld(u32(i))');
    const half = rewriteOperand(code, 'b', 'f16');
    expect(half.startsWith('enable f16;')).toBe(true);
    expect(half).toContain('array<vec4<f16>>');
    expect(() => rewriteOperand(code, 'w', 'f16')).toThrow(/no read-only/);
  });

  it('reference gradient on an fp16-rounded weight matches central finite differences', () => {
    const r = rng(3);
    const [rows, inF, outF] = [3, 5, 4];
    gradcheck(
      ([x, w, b]) => linearForwardRef(x, w, b, inF, outF),
      ([x, w], dY) => linearBackwardRef(x, w, dY, inF, outF),
      [f64(r.normals(rows * inF)), f64(roundToF16(r.normals(outF * inF))), f64(r.normals(outF))],
    );
  });

  it.each(engines)('compiles every variant (%s)', async (_name, make) => {
    const e = await make();
    if (_name === 'shader-f16' && !e.f16) return; // adapter lacks shader-f16: nothing to compile
    for (const k of linearWeightKernels(e.f16 ? 'f16' : 'f16p')) await e.compile(k);
  });

  for (const [name, make] of engines)
    it(`GPU forward and dX match the reference, every matmul kernel (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      if (name !== 'shader-f16') expect(e.f16).toBe(false);
      for (const [i, c] of CASES.entries()) {
        const r = rng(90 + i);
        const xs = r.normals(c.rows * c.inF);
        const ws = roundToF16(r.normals(c.outF * c.inF));
        const bs = r.normals(c.outF);
        const dYs = r.normals(c.rows * c.outF);
        const yRef = linearForwardRef(xs, ws, c.bias ? bs : null, c.inF, c.outF);
        const [dXRef] = linearBackwardRef(xs, ws, dYs, c.inF, c.outF);
        for (const impl of ['naive', 'tiled', 'direct'] as const) {
          await e.scopeAsync(async () => {
            const x = e.tensor(xs, [c.rows, c.inF]);
            const w = e.tensor(ws, [c.outF, c.inF], { dtype: 'f16' });
            expect(weightStore(e, w)).toBe(e.f16 ? 'f16' : 'f16p');
            const b = c.bias ? e.tensor(bs, [c.outF]) : null;
            const y = linearForward(e, x, w, b, { impl });
            expect(y.dtype).toBe('f32');
            const what = `${impl} ${c.rows}×${c.inF}→${c.outF} (${name})`;
            assertClose(await y.read(), yRef, TOL, `y ${what}`);
            const [dX] = linearBackward(e, x, w, e.tensor(dYs, [c.rows, c.outF]), [true, false, false], { impl });
            assertClose(await dX!.read(), dXRef, TOL, `dX ${what}`);
          });
        }
      }
    });

  for (const [name, make] of engines)
    it(`on the tape: dX through a frozen fp16 weight; only the fp16 weight is saved (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      const r = rng(31);
      const [rows, inF, outF] = [6, 8, 5];
      const xs = r.normals(rows * inF);
      const ws = roundToF16(r.normals(outF * inF));
      const bs = r.normals(outF);
      const dYs = r.normals(rows * outF);
      const before = e.pool.getStats().liveBytes;
      const x = e.parameter(xs, [rows, inF], 'x');
      await e.scopeAsync(async () => {
        const w = e.tensor(ws, [outF, inF], { dtype: 'f16' });
        const b = e.tensor(bs, [outF]);
        const y = linear(x, w, b);
        expect(e.tape[e.tape.length - 1].saved).toEqual([w]);
        e.backward(y, e.tensor(dYs, [rows, outF]));
        assertClose(await x.grad!.read(), linearBackwardRef(xs, ws, dYs, inF, outF)[0], TOL, 'x.grad');
      });
      x.dispose();
      expect(e.pool.getStats().liveBytes).toBe(before);
    });

  it('refuses an all-f16 product on a device without shader-f16 (it could not write f16)', async () => {
    const e = await testEngineWithoutF16();
    e.scope(() => {
      const w = e.tensor([1, 2, 3], [1, 3], { dtype: 'f16' });
      const x = e.tensor([1, 2, 3], [1, 3], { dtype: 'f16' });
      expect(() => linearForward(e, x, w)).toThrow(/shader-f16/);
    });
  });
});
