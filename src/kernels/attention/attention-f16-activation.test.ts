// attention with fp16 activations (inference): q, k, v and the output f16, scores, softmax
// statistics (running max and sum, the log-sum-exp) and sums f32, for every head width the
// models use — 40/80/160 (SD 1.5 UNet), 64 (SD 2.1 UNet, CLIP), 512 (the VAE mid-block,
// the wide kernels) — against the float64 reference on the same fp16-rounded q, k, v, at a
// normal binding limit and in batch ranges under a low one.
//
// Tolerance: the reference sees exactly the stored inputs and the kernels compute in f32
// (≤ 5e-7 of scale in fp32, attention.test.ts); the output is rounded once on store, by
// ≤ 2⁻¹¹ ≈ 4.9e-4 of |o| ≤ max|o|. So rtol 1e-3 of scale (twice that; observed ≤ 3.8e-4 on
// lavapipe) + atol 1e-6; the log-sum-exp is f32 from fp16 inputs: the fp32 bound.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngineWithF16, testEngineWithoutF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { attentionForwardRef } from './attention-reference.ts';
import { attentionForward } from './attention-kernels.ts';
import { attention } from './attention.ts';

const TOL = { rtol: 1e-3, atol: 1e-6 };
const TOL_LSE = { rtol: 1e-5, atol: 1e-6 };

interface Case {
  B: number;
  Nq: number;
  Nk: number;
  H: number;
  D: number;
  causal: boolean;
}

// Self- and cross-attention (Nk = 77, the text context) at each width, a query count one
// past the 64-query workgroup, partial key tiles; CLIP's causal self-attention at 64.
const CASES: Case[] = [
  { B: 2, Nq: 70, Nk: 70, H: 2, D: 40, causal: false },
  { B: 2, Nq: 65, Nk: 77, H: 2, D: 40, causal: false },
  { B: 1, Nq: 40, Nk: 33, H: 2, D: 64, causal: false },
  { B: 1, Nq: 77, Nk: 77, H: 2, D: 64, causal: true },
  { B: 2, Nq: 37, Nk: 77, H: 1, D: 80, causal: false },
  { B: 1, Nq: 30, Nk: 30, H: 2, D: 160, causal: false },
  { B: 1, Nq: 13, Nk: 77, H: 1, D: 160, causal: false },
  { B: 1, Nq: 45, Nk: 45, H: 1, D: 512, causal: false },
  { B: 2, Nq: 19, Nk: 37, H: 1, D: 512, causal: false },
];

const label = (c: Case) => `B=${c.B} Nq=${c.Nq} Nk=${c.Nk} H=${c.H} D=${c.D}${c.causal ? ' causal' : ''}`;

// The op on fp16 q, k, v against the reference and against the f32 kernels on the same
// values (unless `vsF32` is false: under a limit that fp16 rows fit and fp32 rows do not);
// the log-sum-exp (f32) from the kernel-level forward.
async function check(e: Engine, c: Case, seed: number, vsF32 = true): Promise<void> {
  const r = rng(seed);
  const hd = c.H * c.D;
  // Scaled up so the softmax is peaked, not nearly uniform.
  const q = roundToF16(r.normals(c.B * c.Nq * hd, 1.5));
  const k = roundToF16(r.normals(c.B * c.Nk * hd, 1.5));
  const v = roundToF16(r.normals(c.B * c.Nk * hd));
  const ref = attentionForwardRef(q, k, v, {
    batch: c.B,
    nq: c.Nq,
    nk: c.Nk,
    heads: c.H,
    headDim: c.D,
    scale: 1 / Math.sqrt(c.D),
    causal: c.causal,
  });
  await e.scopeAsync(async () => {
    const up = (dtype: 'f16' | 'f32') => ({
      q: e.tensor(q, [c.B, c.Nq, hd], { dtype }),
      k: e.tensor(k, [c.B, c.Nk, hd], { dtype }),
      v: e.tensor(v, [c.B, c.Nk, hd], { dtype }),
    });
    const h = up('f16');
    const o = e.noGrad(() => attention(h.q, h.k, h.v, c.H, { causal: c.causal }));
    expect(o.dtype).toBe('f16');
    const got = await o.read();
    assertClose(got, ref.o, TOL, `o ${label(c)}`);
    const { lse } = attentionForward(e, h.q, h.k, h.v, c.H, { causal: c.causal });
    expect(lse.dtype).toBe('f32');
    assertClose(await lse.read(), ref.lse, TOL_LSE, `lse ${label(c)}`);
    if (!vsF32) return;
    const f = up('f32');
    const o32 = e.noGrad(() => attention(f.q, f.k, f.v, c.H, { causal: c.causal }));
    assertClose(got, await o32.read(), TOL, `f16 o vs f32 o ${label(c)}`);
  });
}

describe('attention with fp16 activations', () => {
  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'matches the reference on fp16-rounded q, k, v (%s)',
    async (_label, c, i) => {
      await check(await testEngineWithF16(), c, 70 + i);
    },
  );

  // One batch item per range (fp32 rows would not fit): q is Nq·H·D halves (row bytes multiples of the 256-byte
  // offset alignment), lse H·Nq floats.
  it.each([
    { B: 3, Nq: 64, Nk: 32, H: 2, D: 40, causal: false, limit: 12288 },
    { B: 3, Nq: 64, Nk: 48, H: 1, D: 80, causal: false, limit: 12288 },
    { B: 3, Nq: 64, Nk: 64, H: 1, D: 512, causal: false, limit: 65536 },
  ])('splits the batch under a low binding limit (D=$D, limit $limit)', async ({ limit, ...c }) => {
    const e = await testEngineWithF16();
    expect(c.B * c.Nq * c.H * c.D * 2).toBeGreaterThan(limit);
    e.setBindingLimit(limit);
    try {
      await check(e, c, 90 + c.D, false);
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('refuses fp16 activations while gradients are recorded, and without shader-f16', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const t = e.zeros([1, 4, 8], 'f16');
      expect(() => attention(t, t, t, 1)).toThrow(/attention: fp16 activations .* are for inference/);
      expect(() => e.noGrad(() => attention(t, t, e.zeros([1, 4, 8]), 1))).toThrow(/attention: activations of mixed/);
    });
    const plain = await testEngineWithoutF16();
    plain.scope(() => {
      const t = plain.zeros([1, 4, 8], 'f16');
      expect(() => plain.noGrad(() => attention(t, t, t, 1))).toThrow(/attention: fp16 activations need .*shader-f16/);
    });
  });
});
