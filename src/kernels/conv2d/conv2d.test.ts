import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { conv2dBackwardRef, conv2dForwardRef, convOutputSize, type ConvGeometry } from './conv2d-reference.ts';
import {
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dGeometry,
  conv2dKernels,
  type Conv2dOptions,
} from './conv2d-kernels.ts';
import { conv2d } from './conv2d.ts';

// fp32 sums of up to a few hundred products against float64: bound relative to the largest
// |value| of the result.
const TOL = { rtol: 2e-5, atol: 1e-5 };

interface Case {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  opts: Conv2dOptions;
  bias: boolean;
  splitK?: number;
}

// Odd sizes everywhere: channel counts below one 64-row GEMM tile and past it, N = B·Ho·Wo
// and K = Cin·kh·kw never multiples of the 64-column tile or the 16-deep reduction step;
// for the direct kernels, channel counts not multiples of their 4-channel blocks, rows not
// multiples of their 8-pixel blocks, every stride phase, and the kw = 3 stride-1 bodies
// (3×3 and 2×3) next to the generic ones.
const cases: Case[] = [
  { name: '3x3 pad 1', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: true },
  { name: '3x3 pad 1 stride 2', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1, stride: 2 }, bias: true },
  { name: '3x3 stride 2 pad 0', x: [1, 4, 9, 8], w: [6, 4, 3, 3], opts: { stride: 2 }, bias: true },
  {
    name: 'VAE downsample: pad bottom/right, stride 2',
    x: [1, 5, 8, 6],
    w: [5, 5, 3, 3],
    opts: { stride: 2, padding: { top: 0, bottom: 1, left: 0, right: 1 } },
    bias: true,
  },
  { name: '1x1', x: [2, 6, 5, 3], w: [17, 6, 1, 1], opts: {}, bias: false },
  { name: 'wide tile, Cout 67', x: [1, 20, 6, 7], w: [67, 20, 3, 3], opts: { padding: 1 }, bias: true },
  { name: 'non-square 2x3 kernel', x: [1, 3, 6, 5], w: [4, 3, 2, 3], opts: { padding: 1 }, bias: false },
  {
    name: '3x3 stride 1, uneven padding, 2 column blocks',
    x: [2, 5, 6, 11],
    w: [6, 5, 3, 3],
    opts: { padding: { top: 2, bottom: 0, left: 0, right: 1 } },
    bias: true,
  },
  { name: '1x1 stride 2: pixels no output reads', x: [1, 3, 5, 6], w: [2, 3, 1, 1], opts: { stride: 2 }, bias: false },
  {
    name: 'dW split into 3 partial sums',
    x: [2, 3, 7, 9],
    w: [5, 3, 3, 3],
    opts: { padding: 1 },
    bias: true,
    splitK: 3,
  },
];

describe('conv2d', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of conv2dKernels) await e.compile(k);
  });

  it.each<[string, number[], number[], Conv2dOptions]>([
    ['3x3 pad 1 stride 2', [1, 2, 5, 4], [3, 2, 3, 3], { padding: 1, stride: 2 }],
    ['asymmetric pad', [2, 2, 4, 5], [2, 2, 3, 3], { stride: 2, padding: { top: 0, bottom: 1, left: 0, right: 1 } }],
    ['1x1', [1, 3, 3, 2], [2, 3, 1, 1], {}],
  ])('reference gradient matches central finite differences (%s)', (_name, xs, ws, opts) => {
    const g = conv2dGeometry(xs, ws, opts);
    const r = rng(11);
    const x = f64(r.normals(xs.reduce((a, b) => a * b)));
    const w = f64(r.normals(ws.reduce((a, b) => a * b)));
    const bias = f64(r.normals(ws[0]));
    gradcheck(
      ([x, w, bias]) => conv2dForwardRef(g, x, w, bias),
      ([x, w], dY) => {
        const { dX, dW, dBias } = conv2dBackwardRef(g, x, w, dY);
        return [dX, dW, dBias];
      },
      [x, w, bias],
    );
  });

  it.each(cases.map((c) => [c.name, c] as const))(
    'GPU naive, tuned and direct match the reference (%s)',
    async (_name, c) => {
      const e = await testEngine();
      const g: ConvGeometry = conv2dGeometry(c.x, c.w, c.opts);
      const { Ho, Wo } = convOutputSize(g);
      const r = rng(c.x.join('').length * 31 + c.w[0]);
      const xs = r.normals(c.x.reduce((a, b) => a * b));
      const ws = r.normals(
        c.w.reduce((a, b) => a * b),
        0.5,
      );
      const bs = c.bias ? r.normals(c.w[0]) : null;
      const dYs = r.normals(g.B * g.Cout * Ho * Wo);
      const yRef = conv2dForwardRef(g, xs, ws, bs);
      const ref = conv2dBackwardRef(g, xs, ws, dYs);
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, c.x);
        const w = e.tensor(ws, c.w);
        const b = bs ? e.tensor(bs, [c.w[0]]) : null;
        const dY = e.tensor(dYs, [g.B, g.Cout, Ho, Wo]);
        const out: Record<string, Record<string, Float32Array>> = {};
        for (const impl of ['naive', 'tuned', 'direct'] as const) {
          const o = { ...c.opts, impl, splitK: c.splitK };
          const y = conv2dForward(e, x, w, b, o);
          expect(y.shape).toEqual([g.B, g.Cout, Ho, Wo]);
          out[impl] = {
            y: await y.read(),
            dX: await conv2dBackwardInput(e, c.x, w, dY, o).read(),
            dW: await conv2dBackwardWeight(e, x, c.w, dY, o).read(),
          };
          assertClose(out[impl].y, yRef, TOL, `${impl} y`);
          assertClose(out[impl].dX, ref.dX, TOL, `${impl} dX`);
          assertClose(out[impl].dW, ref.dW, TOL, `${impl} dW`);
        }
        for (const k of ['y', 'dX', 'dW']) {
          assertClose(out.tuned[k], out.naive[k], TOL, `tuned vs naive ${k}`);
          assertClose(out.direct[k], out.naive[k], TOL, `direct vs naive ${k}`);
        }
        assertClose(await conv2dBackwardBias(e, dY).read(), ref.dBias, TOL, 'dBias');
      });
    },
  );

  it('dBias reduces more than one workgroup-width per channel', async () => {
    const e = await testEngine();
    const shape = [3, 2, 11, 13]; // 429 values per channel > 256 invocations
    const dYs = rng(5).normals(shape.reduce((a, b) => a * b));
    const g = conv2dGeometry([3, 1, 11, 13], [2, 1, 1, 1]);
    const ref = conv2dBackwardRef(g, new Float64Array(3 * 11 * 13), new Float64Array(2), dYs);
    await e.scopeAsync(async () => {
      assertClose(await conv2dBackwardBias(e, e.tensor(dYs, shape)).read(), ref.dBias, TOL, 'dBias');
    });
  });

  it('records on the tape: backward reaches x.grad, weight.grad, bias.grad and frees everything', async () => {
    const e = await testEngine();
    const r = rng(21);
    const xShape = [2, 3, 6, 5];
    const wShape = [4, 3, 3, 3];
    const opts = { padding: 1, stride: 2 };
    const g = conv2dGeometry(xShape, wShape, opts);
    const { Ho, Wo } = convOutputSize(g);
    const xs = r.normals(2 * 3 * 6 * 5);
    const ws = r.normals(4 * 3 * 9);
    const bs = r.normals(4);
    const dYs = r.normals(2 * 4 * Ho * Wo);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, xShape, 'x');
    const w = e.parameter(ws, wShape, 'w');
    const b = e.parameter(bs, [4], 'b');
    const y = e.scope(() => conv2d(x, w, b, opts));
    expect(y.shape).toEqual([2, 4, Ho, Wo]);
    assertClose(await y.read(), conv2dForwardRef(g, xs, ws, bs), TOL, 'y');
    const dY = e.tensor(dYs, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const ref = conv2dBackwardRef(g, xs, ws, dYs);
    assertClose(await x.grad!.read(), ref.dX, TOL, 'x.grad');
    assertClose(await w.grad!.read(), ref.dW, TOL, 'w.grad');
    assertClose(await b.grad!.read(), ref.dBias, TOL, 'b.grad');
    for (const t of [x, w, b]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before); // nothing leaked
  });

  it('skips gradients nobody needs: constant input, no bias', async () => {
    const e = await testEngine();
    const r = rng(22);
    const xs = r.normals(1 * 2 * 5 * 5);
    const ws = r.normals(3 * 2 * 9);
    const before = e.pool.getStats().liveBytes;
    const w = e.parameter(ws, [3, 2, 3, 3], 'w');
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [1, 2, 5, 5]);
      const y = conv2d(x, w, null, { padding: 1 });
      e.backward(y, e.full(y.shape, 1));
      expect(x.grad).toBeNull();
      const g = conv2dGeometry([1, 2, 5, 5], [3, 2, 3, 3], { padding: 1 });
      const ref = conv2dBackwardRef(g, xs, ws, new Float64Array(3 * 25).fill(1));
      assertClose(await w.grad!.read(), ref.dW, TOL, 'w.grad');
    });
    w.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects mismatched shapes and bad options', async () => {
    const e = await testEngine();
    e.scope(() => {
      const x = e.zeros([1, 3, 4, 4]);
      expect(() => conv2dForward(e, x, e.zeros([2, 4, 3, 3]), null)).toThrow(/channels/);
      expect(() => conv2dForward(e, x, e.zeros([2, 3, 3, 3]), null, { stride: 0 })).toThrow(/stride/);
      expect(() => conv2dForward(e, x, e.zeros([2, 3, 5, 5]), null)).toThrow(/does not fit/);
      expect(() => conv2dForward(e, x, e.zeros([2, 3, 3, 3]), e.zeros([3]))).toThrow(/bias/);
      // fp16 activations are for inference (conv2d-f16-activations.test.ts).
      expect(() => conv2dForward(e, e.zeros([1, 3, 4, 4], 'f16'), e.zeros([2, 3, 3, 3]), null)).toThrow(
        /fp16 activations .* are for inference/,
      );
    });
  });
});
