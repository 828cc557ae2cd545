// fp16 activations through the broadcasting binary ops and the scalar ops (inference): both
// operands and y fp16, each element's one operation in f32. The reference runs on the same
// fp16-rounded inputs, so what remains is the rounding of y's store (≤ 2⁻¹¹ relative to
// |y|) plus the f32 operation's (1e-6 of the scale, the fp32 tests' tolerance).
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { testEngineWithF16, withBindingLimit } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { roundToF16 } from '../../engine/dtype.ts';
import { affineForwardRef, binaryForwardRef } from './binary-reference.ts';
import { affineForward, binaryForward, type BinaryOp } from './binary-kernels.ts';
import { add, addScalar, div, mul, scale, sub } from './binary.ts';

const TOL_F16 = { rtol: 2 ** -11 + 1e-6, atol: 1e-6 };
// fp16 vs the fp32 op on the same inputs: the same f32 operation, then one rounding.
const TOL_VS_F32 = { rtol: 2 ** -11 + 1e-7, atol: 1e-7 };
const OPS = { add, sub, mul, div };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  aShape: number[];
  bShape: number[];
  /** A binding limit to run under (bytes), or undefined for the device's. */
  limit?: number;
  what: string;
}

describe('binary ops with fp16 activations', () => {
  it.each<Case>([
    { aShape: [2, 3, 5, 7], bShape: [1, 3, 1, 1], what: 'per-channel, scalar kernel' },
    { aShape: [2, 9, 8], bShape: [8], what: 'vec4, b splatted' },
    { aShape: [1, 3, 1, 1], bShape: [2, 3, 4, 4], what: 'vec4, a splatted' },
    { aShape: [5, 101, 4], bShape: [5, 101, 4], what: 'vec4, same shapes' },
    { aShape: [3, 1, 5], bShape: [4, 1], what: 'both broadcast' },
    { aShape: [4, 8, 64], bShape: [4, 8, 64], limit: 2048, what: 'split: element ranges' },
    { aShape: [4, 6, 8, 8], bShape: [1, 6, 1, 1], limit: 2048, what: 'split: image ranges' },
    { aShape: [2, 16, 8, 8], bShape: [2, 16, 1, 1], limit: 2048, what: 'split: plane ranges, b rows copied' },
    { aShape: [16], bShape: [8, 12, 16], limit: 2048, what: 'split: broadcast first operand' },
    // Planes of 9 halves (18 bytes) and b rows of one half: copies only in even row counts.
    { aShape: [8, 32, 3, 3], bShape: [8, 32, 1, 1], limit: 4096, what: 'split: odd fp16 rows' },
    // Rows of 256 bytes fit 9 to the limit; b's one-half rows need an even 8.
    { aShape: [20, 128], bShape: [20, 1], limit: 2304, what: 'split: an odd chunk made even' },
  ])('$what: $aShape ⊕ $bShape matches the reference on fp16-rounded inputs', async ({ aShape, bShape, limit }) => {
    const e = await testEngineWithF16();
    const r = rng(size(aShape) + size(bShape));
    const as = roundToF16(r.normals(size(aShape), 2));
    const bsAny = roundToF16(r.normals(size(bShape), 2));
    // Divisors away from zero.
    const bsDiv = roundToF16(r.uniforms(size(bShape), 0.5, 2));
    await withBindingLimit(e, limit, async () => {
      const a = e.tensor(as, aShape, { dtype: 'f16' });
      for (const op of Object.keys(OPS) as BinaryOp[]) {
        const bs = op === 'div' ? bsDiv : bsAny;
        const b = e.tensor(bs, bShape, { dtype: 'f16' });
        const want = binaryForwardRef(op, as, aShape, bs, bShape);
        const y = e.noGrad(() => OPS[op](a, b));
        if (limit) expect(y.byteLength).toBeGreaterThan(limit);
        expect(y.dtype).toBe('f16');
        expect(y.shape).toEqual(want.shape);
        const got = await y.read();
        assertClose(got, want.y, TOL_F16, `${op} y`);
        if (!limit) assertClose(await binaryForward(e, op, a, b, 'scalar').read(), want.y, TOL_F16, `${op} scalar y`);
        const y32 = await e.noGrad(() => OPS[op](e.tensor(as, aShape), e.tensor(bs, bShape))).read();
        assertClose(got, y32, TOL_VS_F32, `${op} fp16 y vs fp32 y`);
      }
    });
  });

  // 3001 halves: a partial vec4, and 6002 bytes that the low limit splits.
  it.each([{ limit: undefined }, { limit: 2048 }])('scale and addScalar (limit=$limit)', async ({ limit }) => {
    const e = await testEngineWithF16();
    const xs = roundToF16(rng(3001).normals(3001, 3));
    await withBindingLimit(e, limit, async () => {
      const x = e.tensor(xs, [3001], { dtype: 'f16' });
      const scaled = e.noGrad(() => scale(x, -2.5));
      expect(scaled.dtype).toBe('f16');
      assertClose(await scaled.read(), affineForwardRef(xs, -2.5, 0), TOL_F16, 'scale');
      const shifted = e.noGrad(() => addScalar(x, 0.75));
      assertClose(await shifted.read(), affineForwardRef(xs, 1, 0.75), TOL_F16, 'addScalar');
      if (!limit) {
        const scalar = await affineForward(e, x, -2.5, 0, 'scalar').read();
        assertClose(scalar, affineForwardRef(xs, -2.5, 0), TOL_F16, 'scalar scale');
      }
    });
  });

  it('refuse fp16 activations while gradients are recorded, and mixed dtypes', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const h = e.zeros([4], 'f16');
      const f = e.zeros([4]);
      expect(() => add(h, h)).toThrow(/^add: fp16 activations .* are for inference/);
      expect(() => scale(h, 2)).toThrow(/^scale: fp16 activations .* are for inference/);
      expect(() => e.noGrad(() => mul(h, f))).toThrow(/^mul: activations of mixed dtypes/);
      expect(() => binaryForward(e, 'mul', h, f)).toThrow(/^mul: activations of mixed dtypes/);
    });
  });
});
