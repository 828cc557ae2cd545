import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { linearBackwardRef, linearForwardRef } from './linear-reference.ts';
import { linearBackward, linearForward, linearKernels, linearKernelVariants } from './linear-kernels.ts';
import { linear } from './linear.ts';
import type { MatmulImpl } from '../matmul/matmul-kernels.ts';

interface Case {
  x: number[];
  out: number;
  bias: boolean;
}

const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const inOf = (c: Case) => c.x[c.x.length - 1];
const label = (c: Case) => `x[${c.x}]·W[${c.out},${inOf(c)}]ᵀ${c.bias ? '+b' : ''}`;

// fp32 GPU vs float64 reference; the longest sums (dW over up to 300 rows) stay ≈ 1e-6 of scale.
const F32_TOL = { rtol: 2e-5, atol: 1e-6 };

// Odd feature counts and row counts (scalar loads, partial tiles), multiples of 4 (vec4
// loads and stores), a 1-D input, 4-D inputs whose leading dims all fold into rows, and
// more columns than one 64-column bias-gradient workgroup.
const CASES: Case[] = [
  { x: [3], out: 2, bias: true },
  { x: [5, 3], out: 4, bias: false },
  { x: [2, 7, 13], out: 9, bias: true },
  { x: [3, 25, 33], out: 70, bias: true },
  { x: [2, 2, 17, 36], out: 72, bias: true },
  { x: [300, 8], out: 5, bias: true },
];

async function checkCase(c: Case, impl: MatmulImpl, seed: number): Promise<void> {
  const e = await testEngine();
  const r = rng(seed);
  const inF = inOf(c);
  const xs = r.normals(size(c.x));
  const ws = r.normals(c.out * inF);
  const bs = r.normals(c.out);
  const yShape = [...c.x.slice(0, -1), c.out];
  const dYs = r.normals(size(yShape));
  await e.scopeAsync(async () => {
    const x = e.tensor(xs, c.x);
    const w = e.tensor(ws, [c.out, inF]);
    const b = c.bias ? e.tensor(bs, [c.out]) : null;
    const y = linearForward(e, x, w, b, { impl });
    expect(y.shape).toEqual(yShape);
    assertClose(await y.read(), linearForwardRef(xs, ws, c.bias ? bs : null, inF, c.out), F32_TOL, `y ${label(c)}`);
    const [dX, dW, dB] = linearBackward(e, x, w, e.tensor(dYs, yShape), [true, true, true], { impl });
    const [dXr, dWr, dBr] = linearBackwardRef(xs, ws, dYs, inF, c.out);
    expect(dX!.shape).toEqual(c.x);
    expect(dW!.shape).toEqual([c.out, inF]);
    assertClose(await dX!.read(), dXr, F32_TOL, `dX ${label(c)} ${impl}`);
    assertClose(await dW!.read(), dWr, F32_TOL, `dW ${label(c)} ${impl}`);
    assertClose(await dB!.read(), dBr, F32_TOL, `dB ${label(c)} ${impl}`);
  });
}

describe('linear', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of linearKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences', () => {
    const r = rng(1);
    const [rows, inF, outF] = [3, 4, 5];
    gradcheck(
      ([x, w, b]) => linearForwardRef(x, w, b, inF, outF),
      ([x, w], dY) => linearBackwardRef(x, w, dY, inF, outF),
      [f64(r.normals(rows * inF)), f64(r.normals(outF * inF)), f64(r.normals(outF))],
    );
  });

  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'GPU forward and backward match the reference, every matmul kernel (%s)',
    async (_name, c, i) => {
      for (const impl of ['naive', 'tiled', 'direct'] as const) await checkCase(c, impl, 50 + i);
    },
  );

  it('rejects mismatched shapes', async () => {
    const e = await testEngine();
    e.scope(() => {
      const w = e.zeros([4, 3]);
      expect(() => linearForward(e, e.zeros([2, 5]), w)).toThrow(/features/);
      expect(() => linearForward(e, e.zeros([2, 3]), w, e.zeros([3]))).toThrow(/bias/);
      expect(() => linearForward(e, e.zeros([2, 3]), e.zeros([4, 3, 1]))).toThrow(/weight/);
    });
  });

  // fp16 storage, f32 accumulation, against the reference on the same f16-rounded inputs:
  // only the final f16 rounding (≤ 2⁻¹¹ relative) and summation order differ.
  it('f16 storage variant matches the fp32 reference on f16-rounded inputs', async (ctx) => {
    const e = await testEngine();
    ctx.skip(!e.f16, 'adapter lacks shader-f16: no f16 linear to test');
    for (const k of linearKernelVariants('f16')) await e.compile(k);
    const tol = { rtol: 2e-3, atol: 1e-4 };
    const [rows, inF, outF] = [37, 24, 70];
    const r = rng(77);
    const xs = roundToF16(r.normals(rows * inF));
    const ws = roundToF16(r.normals(outF * inF));
    const bs = roundToF16(r.normals(outF));
    const dYs = roundToF16(r.normals(rows * outF));
    const [dXr, dWr, dBr] = linearBackwardRef(xs, ws, dYs, inF, outF);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [rows, inF], { dtype: 'f16' });
      const w = e.tensor(ws, [outF, inF], { dtype: 'f16' });
      const b = e.tensor(bs, [outF], { dtype: 'f16' });
      const y = linearForward(e, x, w, b);
      expect(y.dtype).toBe('f16');
      assertClose(await y.read(), linearForwardRef(xs, ws, bs, inF, outF), tol, 'f16 y');
      const [dX, dW, dB] = linearBackward(e, x, w, e.tensor(dYs, [rows, outF], { dtype: 'f16' }));
      assertClose(await dX!.read(), dXr, tol, 'f16 dX');
      assertClose(await dW!.read(), dWr, tol, 'f16 dW');
      assertClose(await dB!.read(), dBr, tol, 'f16 dB');
    });
  });

  it('records on the tape: grads reach x, weight and bias, and nothing leaks', async () => {
    const e = await testEngine();
    const r = rng(21);
    const [inF, outF] = [6, 5];
    const xs = r.normals(2 * 3 * inF);
    const ws = r.normals(outF * inF);
    const bs = r.normals(outF);
    const dYs = r.normals(2 * 3 * outF);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, [2, 3, inF], 'x');
    const w = e.parameter(ws, [outF, inF], 'w');
    const b = e.parameter(bs, [outF], 'b');
    const y = e.scope(() => linear(x, w, b));
    expect(y.shape).toEqual([2, 3, outF]);
    const dY = e.tensor(dYs, [2, 3, outF]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const [dXr, dWr, dBr] = linearBackwardRef(xs, ws, dYs, inF, outF);
    assertClose(await x.grad!.read(), dXr, F32_TOL, 'x.grad');
    assertClose(await w.grad!.read(), dWr, F32_TOL, 'w.grad');
    assertClose(await b.grad!.read(), dBr, F32_TOL, 'b.grad');
    for (const t of [x, w, b]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('with a frozen weight and no bias: only dX is computed, and x is not kept for backward', async () => {
    const e = await testEngine();
    const r = rng(23);
    const [inF, outF] = [7, 3];
    const xs = r.normals(4 * inF);
    const ws = r.normals(outF * inF);
    const x = e.parameter(xs, [4, inF], 'x');
    await e.scopeAsync(async () => {
      const w = e.tensor(ws, [outF, inF]);
      const y = linear(x, w);
      expect(e.tape[e.tape.length - 1].saved).toEqual([w]);
      const seed = e.full(y.shape, 1);
      const dispatches = e.dispatchCount;
      e.backward(y, seed);
      expect(e.dispatchCount - dispatches).toBe(1); // dX only (the seed's copy is a buffer copy)
      const [dXr] = linearBackwardRef(xs, ws, new Float64Array(4 * outF).fill(1), inF, outF);
      assertClose(await x.grad!.read(), dXr, F32_TOL, 'x.grad');
    });
    x.dispose();
  });
});
