import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { affineForwardRef, binaryBackwardRef, binaryForwardRef } from './binary-reference.ts';
import {
  affineForward,
  binaryBackward,
  binaryForward,
  binaryKernels,
  vecMode,
  type BinaryOp,
} from './binary-kernels.ts';
import { broadcastLayout, broadcastShapes } from './broadcast.ts';
import { add, addScalar, div, mul, scale, sub } from './binary.ts';

const OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div'];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
// div's b stays in [0.5, 2] so that 1/b² does not blow up the gradient.
const operand = (seed: number, shape: number[], positive: boolean) =>
  positive ? rng(seed).uniforms(size(shape), 0.5, 2) : rng(seed).normals(size(shape));

// The UNet's broadcasts, both operands broadcasting, odd sizes, and n > one workgroup; the
// last five take the vec4 kernels (vv, vs, sv, vv with n > one vec4 workgroup of 4096, sv).
const shapes: [number[], number[]][] = [
  [
    [2, 3, 5, 7],
    [1, 3, 1, 1],
  ],
  [[2, 9, 5], [5]],
  [
    [2, 3, 5, 7],
    [2, 3, 1, 1],
  ],
  [[7], [7]],
  [
    [3, 1, 5],
    [4, 1],
  ],
  [[1], [2, 300]],
  [
    [257, 3],
    [257, 1],
  ],
  [[1, 3], [3]],
  [[2, 9, 8], [8]],
  [
    [2, 3, 4, 5],
    [1, 3, 1, 1],
  ],
  [
    [1, 3, 1, 1],
    [2, 3, 4, 4],
  ],
  [
    [5, 1001, 4],
    [5, 1001, 4],
  ],
];
const vecModes = [null, null, null, null, null, 'sv', null, null, 'vv', 'vs', 'sv', 'vv'];

describe('binary', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of binaryKernels) await e.compile(k);
  });

  it('broadcasts shapes like NumPy and merges dimensions that need no index math', () => {
    expect(broadcastShapes([2, 3, 4, 5], [3, 1, 1])).toEqual([2, 3, 4, 5]);
    expect(broadcastShapes([3, 1, 5], [4, 1])).toEqual([3, 4, 5]);
    expect(broadcastShapes([], [2])).toEqual([2]);
    expect(() => broadcastShapes([2, 3], [4])).toThrow(/broadcast/);
    // (B,N,C) + (C): rows of C, b repeats every row.
    expect(broadcastLayout([2, 9, 5], [[2, 9, 5], [5]])).toEqual({
      dims: [18, 5],
      strides: [
        [5, 1],
        [0, 1],
      ],
    });
    // (B,C,H,W) + (1,C,1,1): b's index is (i / HW) % C.
    expect(
      broadcastLayout(
        [2, 3, 4, 5],
        [
          [2, 3, 4, 5],
          [1, 3, 1, 1],
        ],
      ),
    ).toEqual({
      dims: [2, 3, 20],
      strides: [
        [60, 20, 1],
        [0, 1, 0],
      ],
    });
    expect(
      broadcastLayout(
        [4, 6],
        [
          [4, 6],
          [4, 6],
        ],
      ),
    ).toEqual({ dims: [24], strides: [[1], [1]] });
    expect(broadcastLayout([1], [[1], []])).toEqual({ dims: [1], strides: [[0], [0]] });
  });

  it.each(OPS)('reference gradient of %s matches central finite differences', (op) => {
    const a = f64(operand(1, [2, 3, 4], false));
    const b = f64(operand(2, [3, 1], op === 'div'));
    gradcheck(
      ([a, b]) => binaryForwardRef(op, a, [2, 3, 4], b, [3, 1]).y,
      ([a, b], dY) => binaryBackwardRef(op, a, [2, 3, 4], b, [3, 1], dY),
      [a, b],
    );
  });

  it.each(shapes.map((s, i) => [...s, vecModes[i]]))(
    'GPU forward and backward of all ops match the reference: %j ⊕ %j (vec4: %s)',
    async (aShape, bShape, mode) => {
      const e = await testEngine();
      const outShape = broadcastShapes(aShape, bShape);
      expect(vecMode(broadcastLayout(outShape, [aShape, bShape]))).toBe(mode);
      const dYs = rng(3).normals(size(outShape));
      for (const op of OPS) {
        const as = operand(1, aShape, false);
        const bs = operand(2, bShape, op === 'div');
        const ref = binaryForwardRef(op, as, aShape, bs, bShape);
        const [dARef, dBRef] = binaryBackwardRef(op, as, aShape, bs, bShape, dYs);
        await e.scopeAsync(async () => {
          const a = e.tensor(as, aShape);
          const b = e.tensor(bs, bShape);
          const out: Record<string, Float32Array[]> = {};
          for (const impl of ['scalar', 'vec4'] as const) {
            const y = binaryForward(e, op, a, b, impl);
            expect(y.shape).toEqual(outShape);
            // Elementwise fp32: one rounding per element.
            assertClose(await y.read(), ref.y, { rtol: 1e-6, atol: 1e-6 }, `${impl} ${op} y`);
            const [dA, dB] = binaryBackward(e, op, a, b, e.tensor(dYs, outShape), [true, true], impl);
            expect(dA!.shape).toEqual(aShape);
            expect(dB!.shape).toEqual(bShape);
            out[impl] = [await y.read(), await dA!.read(), await dB!.read()];
            // Gradients summed over up to 600 broadcast elements in fp32.
            assertClose(out[impl][1], dARef, { rtol: 1e-5, atol: 1e-5 }, `${impl} ${op} dA`);
            assertClose(out[impl][2], dBRef, { rtol: 1e-5, atol: 1e-5 }, `${impl} ${op} dB`);
          }
          out.vec4.forEach((v, i) =>
            assertClose(v, out.scalar[i], { rtol: 1e-6, atol: 1e-6 }, `vec4 vs scalar ${op} ${i}`),
          );
        });
      }
    },
  );

  it('skips gradients that are not needed', async () => {
    const e = await testEngine();
    await e.scopeAsync(async () => {
      const a = e.tensor([1, 2, 3], [3]);
      const b = e.tensor([4], [1]);
      const [dA, dB] = binaryBackward(e, 'mul', a, b, e.tensor([1, 1, 1], [3]), [false, true]);
      expect(dA).toBeNull();
      assertClose(await dB!.read(), [6], { rtol: 0, atol: 0 }, 'dB');
    });
  });

  // Odd sizes (a partial last vec4), and more than one vec4 workgroup (4096 elements).
  it.each([[1], [7], [1000], [9001]])('GPU scale and addScalar match the reference (n=%i)', async (n) => {
    const e = await testEngine();
    const xs = rng(n).normals(n);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [n]);
      for (const impl of ['scalar', 'vec4'] as const) {
        const scaled = await affineForward(e, x, -2.5, 0, impl).read();
        assertClose(scaled, affineForwardRef(xs, -2.5, 0), { rtol: 1e-6 }, `${impl} scale`);
        const shifted = await affineForward(e, x, 1, 0.75, impl).read();
        assertClose(shifted, affineForwardRef(xs, 1, 0.75), { rtol: 1e-6 }, `${impl} addScalar`);
      }
    });
  });

  it('records on the tape: broadcast grads reach the parameters and everything is freed', async () => {
    const e = await testEngine();
    const [xShape, wShape, vShape] = [[2, 3, 4], [3, 1], [4]];
    const xs = rng(4).normals(24);
    const ws = rng(5).normals(3);
    const vs = rng(6).uniforms(4, 0.5, 2);
    const dYs = rng(7).normals(24);
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter(xs, xShape, 'x');
    const w = e.parameter(ws, wShape, 'w');
    const v = e.parameter(vs, vShape, 'v');
    // y = 2·((x·w − w) / v + 3): every op once, w used twice (its grads accumulate).
    const y = e.scope(() => scale(addScalar(div(sub(mul(x, w), w), v), 3), 2));
    const dY = e.tensor(dYs, xShape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    // The same chain through the CPU references.
    const m = binaryForwardRef('mul', xs, xShape, ws, wShape).y;
    const s = binaryForwardRef('sub', m, xShape, ws, wShape).y;
    const dD = f64(dYs).map((g) => 2 * g);
    const [dS, dV] = binaryBackwardRef('div', s, xShape, vs, vShape, dD);
    const [dM, dW2] = binaryBackwardRef('sub', m, xShape, ws, wShape, dS);
    const [dX, dW1] = binaryBackwardRef('mul', xs, xShape, ws, wShape, dM);
    const tol = { rtol: 1e-5, atol: 1e-6 };
    assertClose(await x.grad!.read(), dX, tol, 'x.grad');
    assertClose(
      await w.grad!.read(),
      dW1.map((g, i) => g + dW2[i]),
      tol,
      'w.grad',
    );
    assertClose(await v.grad!.read(), dV, tol, 'v.grad');
    for (const t of [x, w, v]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('records add with an unbroadcast input: dY passes through and is copied when used twice', async () => {
    const e = await testEngine();
    const before = e.pool.getStats().liveBytes;
    const x = e.parameter([1, 2, 3], [3], 'x');
    const y = e.scope(() => add(x, x));
    const dY = e.tensor([1, 10, 100], [3]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    assertClose(await x.grad!.read(), [2, 20, 200], { rtol: 0, atol: 0 }, 'x.grad');
    x.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
