// fp16 activations through the element-wise activations (SiLU, GELU exact and tanh, quick
// GELU, GEGLU): inference only, x and y fp16, the math in f32. The references run on the
// same fp16-rounded inputs, so what remains is the one rounding of each stored y (≤ 2⁻¹¹
// relative to |y|) plus the kernels' fp32 error (2e-6 of the scale, the fp32 tests' TOL):
// rtol 2⁻¹¹ + 2e-6 of max|y|.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../../test/close.ts';
import { testEngineWithF16, withBindingLimit } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gegluForwardRef } from '../geglu/geglu-reference.ts';
import { gegluForward } from '../geglu/geglu-kernels.ts';
import { geglu } from '../geglu/geglu.ts';
import { geluForwardRef } from '../gelu/gelu-reference.ts';
import { geluForward } from '../gelu/gelu-kernels.ts';
import { gelu } from '../gelu/gelu.ts';
import { quickGeluForwardRef } from '../quick-gelu/quick-gelu-reference.ts';
import { quickGeluForward } from '../quick-gelu/quick-gelu-kernels.ts';
import { quickGelu } from '../quick-gelu/quick-gelu.ts';
import { siluForwardRef } from '../silu/silu-reference.ts';
import { siluForward } from '../silu/silu-kernels.ts';
import { silu } from '../silu/silu.ts';
import type { UnaryImpl } from './unary-kernels.ts';

const TOL_F16 = { rtol: 2 ** -11 + 2e-6, atol: 1e-6 };
// fp16 vs the fp32 op on the same inputs: the same f32 arithmetic, then one rounding.
const TOL_VS_F32 = { rtol: 2 ** -11 + 1e-7, atol: 1e-7 };
/** A binding limit below every tensor of the split cases (bytes). */
const LOW_LIMIT = 2048;

interface Activation {
  name: string;
  /** The op (autograd entry point), vec4 kernels. */
  op: (x: Tensor) => Tensor;
  /** The kernel-level forward with a chosen implementation. */
  forward: (e: Engine, x: Tensor, impl: UnaryImpl) => Tensor;
  ref: (x: Float32Array) => Float64Array;
  /** The op's own name in its error messages. */
  error: string;
}

const activations: Activation[] = [
  { name: 'silu', op: silu, forward: siluForward, ref: siluForwardRef, error: 'silu' },
  {
    name: 'gelu',
    op: (x) => gelu(x),
    forward: (e, x, i) => geluForward(e, x, 'none', i),
    ref: (x) => geluForwardRef(x),
    error: 'gelu',
  },
  {
    name: 'gelu tanh',
    op: (x) => gelu(x, 'tanh'),
    forward: (e, x, i) => geluForward(e, x, 'tanh', i),
    ref: (x) => geluForwardRef(x, 'tanh'),
    error: 'gelu',
  },
  { name: 'quickGelu', op: quickGelu, forward: quickGeluForward, ref: quickGeluForwardRef, error: 'quickGelu' },
];

describe('element-wise activations with fp16 activations', () => {
  // n = 7: one partial vec4; 3001: several workgroups, a partial vec4, and 6002 bytes, which
  // the low limit splits into element ranges.
  const cases = activations.flatMap((a) =>
    [
      { n: 7, limit: undefined },
      { n: 3001, limit: undefined },
      { n: 3001, limit: LOW_LIMIT },
    ].map((c) => ({ ...c, a, what: a.name })),
  );
  it.each(cases)('$what (n=$n, limit=$limit) matches the reference on fp16-rounded inputs', async ({ a, n, limit }) => {
    const e = await testEngineWithF16();
    const xs = roundToF16(rng(n).normals(n, 3));
    xs[0] = -30; // far on the saturating side
    const want = a.ref(xs);
    await withBindingLimit(e, limit, async () => {
      const xh = e.tensor(xs, [n], { dtype: 'f16' });
      if (limit) expect(xh.byteLength).toBeGreaterThan(limit);
      const y = e.noGrad(() => a.op(xh));
      expect(y.dtype).toBe('f16');
      const got = await y.read();
      assertClose(got, want, TOL_F16, `${a.name} vec4 y`);
      assertClose(await a.forward(e, xh, 'scalar').read(), want, TOL_F16, `${a.name} scalar y`);
      const y32 = await e.noGrad(() => a.op(e.tensor(xs, [n]))).read();
      assertClose(got, y32, TOL_VS_F32, `${a.name} fp16 y vs fp32 y`);
    });
  });

  // (rows, 2F): F = 8 runs the vec4 kernel, F = 5 the scalar one. Under the low limits
  // rows split into aligned ranges (128 rows when a row of x is 20 bytes: hence 4 KiB).
  it.each([
    { shape: [3, 16], limit: undefined },
    { shape: [4, 10], limit: undefined },
    { shape: [3, 40, 16], limit: LOW_LIMIT },
    { shape: [3, 100, 10], limit: 2 * LOW_LIMIT },
  ])('geglu $shape (limit=$limit) matches the reference on fp16-rounded inputs', async ({ shape, limit }) => {
    const e = await testEngineWithF16();
    const n = shape.reduce((p, d) => p * d, 1);
    const f = shape[shape.length - 1] / 2;
    const xs = roundToF16(rng(n).normals(n, 2));
    await withBindingLimit(e, limit, async () => {
      const xh = e.tensor(xs, shape, { dtype: 'f16' });
      if (limit) expect(xh.byteLength).toBeGreaterThan(limit);
      for (const approximate of ['none', 'tanh'] as const) {
        const want = gegluForwardRef(xs, f, approximate);
        const y = e.noGrad(() => geglu(xh, approximate));
        expect(y.dtype).toBe('f16');
        expect(y.shape).toEqual([...shape.slice(0, -1), f]);
        const got = await y.read();
        assertClose(got, want, TOL_F16, `geglu ${approximate} y`);
        const scalar = await gegluForward(e, xh, approximate, 'scalar').read();
        assertClose(scalar, want, TOL_F16, `geglu ${approximate} scalar y`);
        const y32 = await e.noGrad(() => geglu(e.tensor(xs, shape), approximate)).read();
        assertClose(got, y32, TOL_VS_F32, `geglu ${approximate} fp16 y vs fp32 y`);
      }
    });
  });

  it('refuse fp16 activations while gradients are recorded', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const xh = e.zeros([8], 'f16');
      for (const a of activations) {
        expect(() => a.op(xh)).toThrow(new RegExp(`^${a.error}: fp16 activations .* are for inference`));
      }
      expect(() => geglu(xh)).toThrow(/^geglu: fp16 activations .* are for inference/);
    });
  });
});
