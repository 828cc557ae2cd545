// fp16 activations through layerNorm (inference): x and y fp16, statistics f32, parameters
// fp32 or frozen fp16. The reference runs on the same fp16-rounded inputs, so what remains
// is the one rounding of y's store (≤ 2⁻¹¹ relative to |y|) plus the kernel's fp32 error
// (about 1e-5 of the scale, see TOL_Y in layer-norm.test.ts): rtol 2⁻¹¹ + 2e-5 of max|y|.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { testEngineWithF16, testEngineWithoutF16 } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { roundToF16 } from '../../engine/dtype.ts';
import { layerNormBackwardRef, layerNormForwardRef } from './layer-norm-reference.ts';
import { layerNorm } from './layer-norm.ts';

const TOL_F16 = { rtol: 2 ** -11 + 2e-5, atol: 1e-6 };
// fp16 vs the fp32 op on the same inputs: the same f32 arithmetic, then one rounding.
const TOL_VS_F32 = { rtol: 2 ** -11 + 1e-6, atol: 1e-6 };

interface Case {
  shape: number[];
  /** A binding limit to run under (bytes), or undefined for the device's. */
  limit?: number;
  /** Parameters stored as frozen fp16 weights. */
  f16Params?: boolean;
  what: string;
}

describe('layerNorm with fp16 activations', () => {
  it.each<Case>([
    { shape: [2, 9, 32], what: 'vec4 lanes' },
    { shape: [3, 7, 10], what: 'scalar lanes' },
    { shape: [2, 5, 24], f16Params: true, what: 'frozen fp16 weight and bias' },
    { shape: [4, 25, 24], limit: 2048, what: 'split: row ranges' },
    { shape: [4, 25, 24], limit: 2048, f16Params: true, what: 'split: row ranges, fp16 parameters' },
  ])('matches the reference on fp16-rounded inputs ($what)', async ({ shape, limit, f16Params }) => {
    const e = await testEngineWithF16();
    const C = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const r = rng(n + C);
    const xs = roundToF16(r.normals(n, 3).map((v) => v - 0.7));
    const ws = r.normals(C);
    const bs = r.normals(C);
    const [wr, br] = f16Params ? [roundToF16(ws), roundToF16(bs)] : [ws, bs];
    const want = layerNormForwardRef(xs, C, wr, br).y;
    e.setBindingLimit(limit);
    try {
      await e.scopeAsync(async () => {
        const pdt = f16Params ? 'f16' : 'f32';
        const w = e.tensor(ws, [C], { dtype: pdt });
        const b = e.tensor(bs, [C], { dtype: pdt });
        const xh = e.tensor(xs, shape, { dtype: 'f16' });
        if (limit) expect(xh.byteLength).toBeGreaterThan(limit);
        const y = e.noGrad(() => layerNorm(xh, w, b));
        expect(y.dtype).toBe('f16');
        expect(y.shape).toEqual(shape);
        const got = await y.read();
        assertClose(got, want, TOL_F16, 'fp16 y vs reference');
        const y32 = e.noGrad(() => layerNorm(e.tensor(xs, shape), w, b));
        assertClose(got, await y32.read(), TOL_VS_F32, 'fp16 y vs fp32 y');
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('reads frozen fp16 parameters as packed pairs on an adapter without shader-f16', async () => {
    const e = await testEngineWithoutF16();
    const r = rng(8);
    const xs = r.normals(3 * 16);
    const ws = roundToF16(r.normals(16));
    const bs = roundToF16(r.normals(16));
    await e.scopeAsync(async () => {
      const w = e.tensor(ws, [16], { dtype: 'f16' });
      const b = e.tensor(bs, [16], { dtype: 'f16' });
      const y = layerNorm(e.tensor(xs, [3, 16]), w, b);
      // fp32 activations: only the fp32 tolerance of layer-norm.test.ts.
      assertClose(await y.read(), layerNormForwardRef(xs, 16, ws, bs).y, { rtol: 1e-5, atol: 1e-5 }, 'y');
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
    const r = rng(32);
    const xs = r.normals(5 * 16, 2);
    const ws = roundToF16(r.normals(16));
    const bs = roundToF16(r.normals(16));
    const dYs = r.normals(5 * 16);
    const want = layerNormBackwardRef(xs, 16, ws, dYs);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [5, 16], { requiresGrad: true });
      const y = layerNorm(x, e.tensor(ws, [16], { dtype: 'f16' }), e.tensor(bs, [16], { dtype: 'f16' }), 1e-5, {
        variant,
      });
      e.backward(y, e.tensor(dYs, [5, 16]));
      assertClose(await x.grad!.read(), want.dX, { rtol: 1e-4, atol: 1e-5 }, 'dX');
    });
  });

  it('refuses fp16 activations while gradients are recorded, and trainable fp16 parameters', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const w = e.zeros([4]);
      expect(() => layerNorm(e.zeros([2, 4], 'f16'), w, w)).toThrow(/layerNorm: fp16 activations .* are for inference/);
      const wh = e.tensor([1, 1, 1, 1], [4], { dtype: 'f16', requiresGrad: true });
      expect(() => layerNorm(e.zeros([2, 4]), wh, w)).toThrow(/layerNorm: fp16 parameter .* must be frozen/);
    });
  });
});
