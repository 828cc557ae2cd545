// conv2d with an fp16 weight and f32 activations: the frozen-weight path of the UNet and VAE.
// Both ways of reading the weight — shader-f16 where the adapter has it, packed pairs
// (unpack2x16float) on a device created without it — for the naive, tuned and direct kernels,
// forward and dX, against the float64 reference on the same fp16-rounded weight.
import { describe, expect, it } from 'vitest';
import { roundToF16, type DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngine, testEngineWithoutF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { conv2dBackwardRef, conv2dForwardRef, convOutputSize } from './conv2d-reference.ts';
import {
  conv2dBackwardInput,
  conv2dForward,
  conv2dGeometry,
  conv2dWeightKernels,
  type Conv2dOptions,
} from './conv2d-kernels.ts';
import { conv2d } from './conv2d.ts';

const TOL = { rtol: 2e-5, atol: 1e-5 };

// The kw = 3 stride-1 bodies and the generic ones; stride 2 (every dX phase); an odd 1×1
// with an fp16 bias (read through the same accessor as the weight).
const CASES: { name: string; x: number[]; w: number[]; opts: Conv2dOptions; bias: DType | null }[] = [
  { name: '3x3 pad 1', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: 'f32' },
  { name: '3x3 pad 1 stride 2', x: [1, 4, 7, 8], w: [6, 4, 3, 3], opts: { padding: 1, stride: 2 }, bias: null },
  { name: '1x1, fp16 bias', x: [2, 5, 3, 3], w: [7, 5, 1, 1], opts: {}, bias: 'f16' },
];

const engines: [string, () => Promise<Engine>][] = [
  ['shader-f16', testEngine],
  ['packed pairs (no shader-f16)', testEngineWithoutF16],
];

describe('conv2d with an fp16 weight', () => {
  it('reference gradient on an fp16-rounded weight matches central finite differences', () => {
    const g = conv2dGeometry([1, 2, 4, 5], [3, 2, 3, 3], { padding: 1 });
    const r = rng(5);
    gradcheck(
      ([x, w, b]) => conv2dForwardRef(g, x, w, b),
      ([x, w], dY) => {
        const { dX, dW, dBias } = conv2dBackwardRef(g, x, w, dY);
        return [dX, dW, dBias];
      },
      [f64(r.normals(40)), f64(roundToF16(r.normals(54))), f64(r.normals(3))],
    );
  });

  for (const [name, make] of engines) {
    it(`compiles every weight-reading kernel (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      for (const k of conv2dWeightKernels(e.f16 ? 'f16' : 'f16p')) await e.compile(k);
    });

    it(`GPU naive, tuned and direct forward and dX match the reference (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      if (name !== 'shader-f16') expect(e.f16).toBe(false);
      for (const [i, c] of CASES.entries()) {
        const g = conv2dGeometry(c.x, c.w, c.opts);
        const { Ho, Wo } = convOutputSize(g);
        const r = rng(40 + i);
        const xs = r.normals(c.x.reduce((a, b) => a * b));
        const ws = roundToF16(
          r.normals(
            c.w.reduce((a, b) => a * b),
            0.5,
          ),
        );
        const bs = c.bias ? r.normals(c.w[0]) : null;
        if (bs && c.bias === 'f16') bs.set(roundToF16(bs));
        const dYs = r.normals(g.B * g.Cout * Ho * Wo);
        const yRef = conv2dForwardRef(g, xs, ws, bs);
        const { dX: dXRef } = conv2dBackwardRef(g, xs, ws, dYs);
        await e.scopeAsync(async () => {
          const x = e.tensor(xs, c.x);
          const w = e.tensor(ws, c.w, { dtype: 'f16' });
          const b = bs && c.bias ? e.tensor(bs, [c.w[0]], { dtype: c.bias }) : null;
          const dY = e.tensor(dYs, [g.B, g.Cout, Ho, Wo]);
          for (const impl of ['naive', 'tuned', 'direct'] as const) {
            const o = { ...c.opts, impl };
            const what = `${impl} ${c.name} (${name})`;
            assertClose(await conv2dForward(e, x, w, b, o).read(), yRef, TOL, `y ${what}`);
            assertClose(await conv2dBackwardInput(e, c.x, w, dY, o).read(), dXRef, TOL, `dX ${what}`);
          }
        });
      }
    });

    it(`on the tape: dX through a frozen fp16 weight, no fp32 copy saved (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      const g = conv2dGeometry([1, 3, 5, 5], [4, 3, 3, 3], { padding: 1 });
      const r = rng(8);
      const xs = r.normals(75);
      const ws = roundToF16(r.normals(108));
      const dYs = r.normals(100);
      const x = e.parameter(xs, [1, 3, 5, 5], 'x');
      await e.scopeAsync(async () => {
        const w = e.tensor(ws, [4, 3, 3, 3], { dtype: 'f16' });
        const y = conv2d(x, w, null, { padding: 1 });
        const saved = e.tape[e.tape.length - 1].saved;
        expect(saved).toEqual([w]);
        e.backward(y, e.tensor(dYs, [1, 4, 5, 5]));
        assertClose(await x.grad!.read(), conv2dBackwardRef(g, xs, ws, dYs).dX, TOL, 'x.grad');
      });
      x.dispose();
    });
  }
});
