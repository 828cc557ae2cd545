// matmul with fp16 activations (inference): both operands f16 (the f16 kernels), or an fp16
// activation times an f32 weight with `out: 'f16'` (the f32 kernel, its fp16 bindings stored
// as f16 by the engine's half-storage rewrite), against the float64 reference on the same
// fp16-rounded activations, with every kernel, and batch ranges under a low binding limit.
//
// Tolerance: the reference sees exactly the stored operands, the GPU accumulates in f32 and
// rounds each output once on store, by ≤ 2⁻¹¹ ≈ 4.9e-4 of |y| ≤ max|y|; f32 summation adds
// ~1e-6 of scale. So rtol 1e-3 of scale (twice that; observed ≤ 4.3e-4 on lavapipe) + atol 1e-6 (fp16 subnormals).
import { describe, expect, it } from 'vitest';
import { roundToF16, type DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { matmulForwardRef, matmulShapeRef } from './matmul-reference.ts';
import { matmulForward, type MatmulImpl } from './matmul-kernels.ts';
import { matmulForwardSplit } from './matmul-split.ts';
import { matmul } from './matmul.ts';

const TOL = { rtol: 1e-3, atol: 1e-6 };

interface Case {
  a: number[];
  b: number[];
  transA?: boolean;
  transB?: boolean;
  /** b's dtype: f16 (an activation, like a) or f32 (a weight; the product asks for out 'f16'). */
  bType: DType;
}

// Attention-like batched products (scalar and vec4 loads, transposes), a 2-D operand shared
// by the batch, and per-sample LoRA's x (Bt, N, in) · Aᵀ with A f32 (batched and shared).
const CASES: Case[] = [
  { a: [2, 37, 19], b: [2, 19, 45], bType: 'f16' },
  { a: [2, 3, 20, 16], b: [2, 3, 24, 16], transB: true, bType: 'f16' },
  { a: [2, 33, 12], b: [2, 33, 20], transA: true, bType: 'f16' },
  { a: [40, 64], b: [2, 64, 36], bType: 'f16' },
  { a: [2, 21, 24], b: [2, 4, 24], transB: true, bType: 'f32' },
  { a: [2, 21, 7], b: [7, 9], bType: 'f32' },
  { a: [3, 20, 16], b: [16, 8], bType: 'f32' },
];

const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const label = (c: Case) => `a[${c.a}]${c.transA ? 'ᵀ' : ''}·b[${c.b}]${c.transB ? 'ᵀ' : ''} (${c.bType} b)`;

// The fp16 result against the reference and the f32 result on the same values; the op
// itself, or the kernel-level forward with `impl` forced.
async function check(e: Engine, c: Case, seed: number, impl?: MatmulImpl): Promise<void> {
  const r = rng(seed);
  const as = roundToF16(r.normals(size(c.a)));
  const bRaw = r.normals(size(c.b));
  const bs = c.bType === 'f16' ? roundToF16(bRaw) : bRaw;
  const o = { transA: c.transA, transB: c.transB };
  const ref = matmulForwardRef(as, c.a, bs, c.b, o);
  return e.scopeAsync(async () => {
    const a = e.tensor(as, c.a, { dtype: 'f16' });
    const b = e.tensor(bs, c.b, { dtype: c.bType });
    const out = { ...o, out: 'f16' as const };
    const y = e.noGrad(() => (impl ? matmulForward(e, a, b, { ...out, impl }) : matmul(a, b, out)));
    expect(y.dtype).toBe('f16');
    expect(y.shape).toEqual(matmulShapeRef(c.a, c.b, o));
    const got = await y.read();
    assertClose(got, ref, TOL, `f16 y ${label(c)} ${impl ?? ''}`);
    const y32 = matmulForwardSplit(e, e.tensor(as, c.a), e.tensor(bs, c.b), o);
    assertClose(got, await y32.read(), TOL, `f16 y vs f32 y ${label(c)}`);
  });
}

describe('matmul with fp16 activations', () => {
  it('matches the reference on fp16-rounded activations, every kernel', async () => {
    const e = await testEngineWithF16();
    for (const [i, c] of CASES.entries()) {
      for (const impl of [undefined, 'naive', 'tiled', 'direct'] as const) {
        await check(e, c, 80 + i, impl);
      }
    }
  });

  // a: 20 items of 20 × 16 halves (12800 bytes), batched or shared b of either dtype; and
  // 129 items of 5 × 7 results, the last range one item of an odd number of halves.
  it.each([
    { a: [20, 20, 16], b: [20, 16, 12], bType: 'f16', limit: 8192 },
    { a: [20, 20, 16], b: [20, 12, 16], transB: true, bType: 'f32', limit: 8192 },
    { a: [20, 20, 16], b: [16, 12], bType: 'f32', limit: 8192 },
    { a: [20, 20, 16], b: [12, 20], transA: true, transB: true, bType: 'f16', limit: 8192 },
    { a: [129, 5, 8], b: [8, 7], bType: 'f32', limit: 10240 },
  ] as (Case & { limit: number })[])(
    'the same in batch ranges under a low binding limit (%j)',
    async ({ limit, ...c }) => {
      const e = await testEngineWithF16();
      expect(size(c.a) * 2).toBeGreaterThan(limit);
      e.setBindingLimit(limit);
      try {
        await check(e, c, 90 + c.a[0]);
      } finally {
        e.setBindingLimit(undefined);
      }
    },
  );

  it('mixed dtypes: f32 by default (a frozen fp16 weight), f16 only when asked, never while recording', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const h = e.tensor([1, 2, 3, 4], [2, 2], { dtype: 'f16' });
      const w = e.tensor([1, 2, 3, 4], [2, 2]);
      expect(e.noGrad(() => matmul(h, w)).dtype).toBe('f32');
      expect(e.noGrad(() => matmul(h, w, { out: 'f16' })).dtype).toBe('f16');
      expect(e.noGrad(() => matmul(h, h)).dtype).toBe('f16');
      expect(() => matmul(h, h)).toThrow(/matmul: fp16 activations .* are for inference, inside engine.noGrad/);
      expect(() => matmul(h, w, { out: 'f16' })).toThrow(/matmul: fp16 activations .* are for inference/);
      expect(() => e.noGrad(() => matmul(w, w, { out: 'f16' }))).toThrow(/an fp16 activation operand/);
    });
  });
});
