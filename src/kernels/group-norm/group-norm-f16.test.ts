// fp16 activations through groupNorm (inference): x and y fp16, statistics f32, parameters
// fp32 or frozen fp16. The reference runs on the same fp16-rounded inputs, so what remains
// is the one rounding of y's store (≤ 2⁻¹¹ relative to |y|) plus the kernel's fp32 error
// (about 1e-5 of the scale, see TOL_Y in group-norm.test.ts): rtol 2⁻¹¹ + 2e-5 of max|y|.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { testEngineWithF16, testEngineWithoutF16 } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { roundToF16 } from '../../engine/dtype.ts';
import { groupNormBackwardRef, groupNormForwardRef } from './group-norm-reference.ts';
import { groupNorm } from './group-norm.ts';

const TOL_F16 = { rtol: 2 ** -11 + 2e-5, atol: 1e-6 };
// fp16 vs the fp32 op on the same inputs: the same f32 arithmetic, then one rounding.
const TOL_VS_F32 = { rtol: 2 ** -11 + 1e-6, atol: 1e-6 };

interface Case {
  shape: number[];
  groups: number;
  silu: boolean;
  /** A binding limit to run under (bytes), or undefined for the device's. */
  limit?: number;
  /** Parameters stored as frozen fp16 weights. */
  f16Params?: boolean;
  what: string;
}

describe('groupNorm with fp16 activations', () => {
  it.each<Case>([
    { shape: [2, 8, 4, 4], groups: 4, silu: false, what: 'vec4 lanes' },
    { shape: [1, 6, 5, 3], groups: 3, silu: true, what: 'scalar lanes, fused SiLU' },
    { shape: [2, 8, 4, 4], groups: 2, silu: true, f16Params: true, what: 'frozen fp16 weight and bias' },
    { shape: [5, 8, 8, 8], groups: 4, silu: false, limit: 2048, what: 'split: whole images per range' },
    { shape: [2, 32, 8, 8], groups: 8, silu: true, limit: 2048, what: 'split: group ranges of one image' },
    {
      shape: [2, 32, 8, 8],
      groups: 8,
      silu: false,
      limit: 2048,
      f16Params: true,
      what: 'split: group ranges, fp16 parameters',
    },
  ])('matches the reference on fp16-rounded inputs ($what)', async ({ shape, groups, silu, limit, f16Params }) => {
    const e = await testEngineWithF16();
    const [B, C] = shape;
    const S = shape.slice(2).reduce((a, b) => a * b, 1);
    const r = rng(B * 100 + C);
    // Offset and spread so that the statistics matter.
    const xs = roundToF16(r.normals(B * C * S, 3).map((v) => v + 0.5));
    const ws = r.normals(C);
    const bs = r.normals(C);
    const [wr, br] = f16Params ? [roundToF16(ws), roundToF16(bs)] : [ws, bs];
    const want = groupNormForwardRef(xs, { batch: B, channels: C, spatial: S, groups }, wr, br, 1e-5, silu).y;
    e.setBindingLimit(limit);
    try {
      await e.scopeAsync(async () => {
        const pdt = f16Params ? 'f16' : 'f32';
        const w = e.tensor(ws, [C], { dtype: pdt });
        const b = e.tensor(bs, [C], { dtype: pdt });
        const xh = e.tensor(xs, shape, { dtype: 'f16' });
        if (limit) expect(xh.byteLength).toBeGreaterThan(limit);
        const y = e.noGrad(() => groupNorm(xh, groups, w, b, 1e-5, { silu }));
        expect(y.dtype).toBe('f16');
        expect(y.shape).toEqual(shape);
        const got = await y.read();
        assertClose(got, want, TOL_F16, 'fp16 y vs reference');
        const y32 = e.noGrad(() => groupNorm(e.tensor(xs, shape), groups, w, b, 1e-5, { silu }));
        assertClose(got, await y32.read(), TOL_VS_F32, 'fp16 y vs fp32 y');
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('reads frozen fp16 parameters as packed pairs on an adapter without shader-f16', async () => {
    const e = await testEngineWithoutF16();
    const shape = [2, 6, 3, 3];
    const r = rng(7);
    const xs = r.normals(108);
    const ws = roundToF16(r.normals(6));
    const bs = roundToF16(r.normals(6));
    const want = groupNormForwardRef(xs, { batch: 2, channels: 6, spatial: 9, groups: 3 }, ws, bs, 1e-5, true).y;
    await e.scopeAsync(async () => {
      const y = groupNorm(
        e.tensor(xs, shape),
        3,
        e.tensor(ws, [6], { dtype: 'f16' }),
        e.tensor(bs, [6], { dtype: 'f16' }),
        1e-5,
        { silu: true },
      );
      // fp32 activations: only the fp32 tolerance of group-norm.test.ts.
      assertClose(await y.read(), want, { rtol: 1e-5, atol: 1e-5 }, 'y');
    });
  });

  // Training with frozen fp16 norm parameters: fp32 activations, the backward kernels read
  // the parameters through weightVariant (as f16, or as packed pairs without shader-f16).
  // Tolerance: the fp32 gradient one (TOL_GRAD).
  it.each([
    { variant: 'naive' as const, f16: true },
    { variant: 'tuned' as const, f16: true },
    { variant: 'tuned' as const, f16: false },
  ])('backpropagates through frozen fp16 parameters ($variant, shader-f16: $f16)', async ({ variant, f16 }) => {
    const e = f16 ? await testEngineWithF16() : await testEngineWithoutF16();
    const shape = [2, 8, 4, 4];
    const dims = { batch: 2, channels: 8, spatial: 16, groups: 4 };
    const r = rng(31);
    const xs = r.normals(256, 2);
    const ws = roundToF16(r.normals(8));
    const bs = roundToF16(r.normals(8));
    const dYs = r.normals(256);
    const want = groupNormBackwardRef(xs, dims, ws, bs, dYs, 1e-5, true);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, shape, { requiresGrad: true });
      const w = e.tensor(ws, [8], { dtype: 'f16' });
      const b = e.tensor(bs, [8], { dtype: 'f16' });
      const y = groupNorm(x, 4, w, b, 1e-5, { silu: true, variant });
      e.backward(y, e.tensor(dYs, shape));
      assertClose(await x.grad!.read(), want.dX, { rtol: 1e-4, atol: 1e-5 }, 'dX');
    });
  });

  it('refuses fp16 activations while gradients are recorded, and trainable fp16 parameters', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const xh = e.zeros([1, 4, 2], 'f16');
      const w = e.zeros([4]);
      expect(() => groupNorm(xh, 2, w, w)).toThrow(/groupNorm: fp16 activations .* are for inference/);
      expect(() => groupNorm(e.zeros([1, 4, 2]), 2, w, w)).not.toThrow();
      const wh = e.tensor([1, 1, 1, 1], [4], { dtype: 'f16', requiresGrad: true });
      expect(() => groupNorm(e.zeros([1, 4, 2]), 2, wh, w)).toThrow(/groupNorm: fp16 parameter .* must be frozen/);
    });
  });
});
