// conv2d with fp16 activations (x and y stored as fp16, inference only): naive, tuned and
// direct kernels and the split paths, with fp32 and fp16 (frozen, as packs hold them)
// weights and biases, against the float64 reference on the same fp16-rounded inputs and
// against the fp32 op on those inputs.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { DType } from '../../engine/dtype.ts';
import { testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { conv2dForwardRef, convOutputSize } from './conv2d-reference.ts';
import { conv2dForward, conv2dGeometry, type Conv2dKernelOptions } from './conv2d-kernels.ts';
import { conv2d } from './conv2d.ts';

// The reference gets x, the weight and the bias as stored (rounded to fp16 where fp16), so
// input rounding is not error. Each kernel sums in f32 (error ~1e-6 of the scale at these
// sizes) and stores y once, rounding by at most 2⁻¹¹ of |y| ≤ 2⁻¹¹ of the scale: 1e-3 of the
// scale (2 × 2⁻¹¹) bounds it with margin for the f32 sums.
const ONE_STORE = { rtol: 1e-3, atol: 1e-6 };
// A split over input channels adds each block into y in place: with n blocks y is rounded n
// times, each by ≤ 2⁻¹¹ of a partial sum. The cases below have ≤ 4 blocks and partial sums
// within the output's scale, so (4 + margin) × 2⁻¹¹ ≈ 4e-3 of the scale (the f16.md bound).
const SPLIT = { rtol: 4e-3, atol: 1e-6 };
// The fp32 op: f32 sums of ≤ 288 products against float64.
const F32 = { rtol: 2e-5, atol: 1e-5 };

interface Case {
  name: string;
  x: number[];
  w: number[];
  opts: Conv2dKernelOptions;
  bias: DType | null;
  weight: DType;
}

// The kw = 3 stride-1 bodies and the generic ones, fp32 and fp16 weights and biases, no bias.
const CASES: Case[] = [
  { name: '3x3 pad 1, f32 weight', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: 'f32', weight: 'f32' },
  { name: '3x3 pad 1, f16 weight', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: 'f32', weight: 'f16' },
  {
    name: '3x3 pad 1 stride 2, f16 weight, no bias',
    x: [1, 4, 7, 8],
    w: [6, 4, 3, 3],
    opts: { padding: 1, stride: 2 },
    bias: null,
    weight: 'f16',
  },
  { name: '1x1, f16 weight and bias', x: [2, 5, 3, 3], w: [7, 5, 1, 1], opts: {}, bias: 'f16', weight: 'f16' },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const stored = (v: Float32Array, dtype: DType) => (dtype === 'f16' ? roundToF16(v) : v);

describe('conv2d with fp16 activations', () => {
  it.each(CASES.map((c) => [c.name, c] as const))(
    'naive, tuned and direct match the reference on fp16-rounded inputs (%s)',
    async (_name, c) => {
      const e = await testEngineWithF16();
      const g = conv2dGeometry(c.x, c.w, c.opts);
      const { Ho, Wo } = convOutputSize(g);
      const r = rng(size(c.x) + c.w[0]);
      const xs = roundToF16(r.normals(size(c.x)));
      const ws = stored(r.normals(size(c.w), 0.5), c.weight);
      const bs = c.bias ? stored(r.normals(c.w[0]), c.bias) : null;
      const yRef = conv2dForwardRef(g, xs, ws, bs);
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, c.x, { dtype: 'f16' });
        const x32 = e.tensor(xs, c.x);
        const w = e.tensor(ws, c.w, { dtype: c.weight });
        const b = bs && c.bias ? e.tensor(bs, [c.w[0]], { dtype: c.bias }) : null;
        for (const impl of ['naive', 'tuned', 'direct'] as const) {
          const o = { ...c.opts, impl };
          const y = e.noGrad(() => conv2dForward(e, x, w, b, o));
          expect(y.dtype).toBe('f16');
          expect(y.shape).toEqual([g.B, g.Cout, Ho, Wo]);
          const got = await y.read();
          assertClose(got, yRef, ONE_STORE, `${impl} y`);
          // The fp32 op on the same inputs differs only by the final store's rounding.
          assertClose(got, await conv2dForward(e, x32, w, b, o).read(), ONE_STORE, `${impl} f16 vs f32`);
        }
      });
    },
  );

  it('refuses fp16 activations while gradients are recorded', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const x = e.zeros([1, 3, 4, 4], 'f16');
      expect(() => conv2d(x, e.zeros([2, 3, 3, 3]), null)).toThrow(/conv2d: fp16 activations .* are for inference/);
      expect(() => e.noGrad(() => conv2dForward(e, x, e.zeros([2, 3, 3, 3]), null, {}))).not.toThrow();
    });
  });

  // Each case's x is above the limit, so conv2d splits (the engine throws on any binding
  // above it); channel blocks of an fp16 x start at 256-byte aligned offsets.
  const LIMIT = 4096;
  it.each([
    { B: 4, Cin: 8, Cout: 8, H: 12, stride: 1, what: 'image ranges' },
    { B: 2, Cin: 24, Cout: 20, H: 8, stride: 1, what: 'input and output channel ranges of one image' },
    { B: 1, Cin: 24, Cout: 20, H: 12, stride: 2, what: 'input channel ranges, stride 2' },
    { B: 1, Cin: 32, Cout: 4, H: 12, stride: 1, what: 'input channel ranges only, summed in y' },
  ])('under a low binding limit, f16 weight ($what)', async ({ B, Cin, Cout, H, stride }) => {
    const e = await testEngineWithF16();
    const opts = { padding: 1, stride };
    const g = conv2dGeometry([B, Cin, H, H], [Cout, Cin, 3, 3], opts);
    const r = rng(91 + Cin + stride);
    const xs = roundToF16(r.normals(B * Cin * H * H));
    const ws = roundToF16(r.normals(Cout * Cin * 9, 0.2));
    const bs = r.normals(Cout);
    const yRef = conv2dForwardRef(g, xs, ws, bs);
    e.setBindingLimit(LIMIT);
    try {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, [B, Cin, H, H], { dtype: 'f16' });
        expect(x.byteLength).toBeGreaterThan(LIMIT);
        const w = e.tensor(ws, [Cout, Cin, 3, 3], { dtype: 'f16' });
        const x32 = e.tensor(xs, [B, Cin, H, H]);
        const b = e.tensor(bs, [Cout]);
        // Every implementation: the split's blocks add into y (accumulate flag) and take
        // their channels' bias (bias offset) in each kernel's own store.
        for (const impl of ['direct', 'naive', 'tuned'] as const) {
          const y = e.noGrad(() => conv2d(x, w, b, { ...opts, impl }));
          expect(y.dtype).toBe('f16');
          const got = await y.read();
          assertClose(got, yRef, SPLIT, `${impl} y`);
          const y32 = await conv2d(x32, w, b, { ...opts, impl }).read();
          assertClose(y32, yRef, F32, `${impl} fp32 y`);
          assertClose(got, y32, SPLIT, `${impl} f16 vs f32`);
        }
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });
});
