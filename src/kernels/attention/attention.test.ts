import { describe, expect, it } from 'vitest';
import { testEngine, testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from './attention-reference.ts';
import {
  attentionBackward,
  attentionF16Kernels,
  attentionForward,
  attentionKernels,
  attentionKernelsFor,
  attentionNaiveBackward,
  attentionNaiveForward,
  attentionTile,
  ATTENTION_MAX_HEAD_DIM,
} from './attention-kernels.ts';
import { attention } from './attention.ts';

// fp32 GPU vs float64 reference, bounds relative to each array's largest magnitude.
// Observed on lavapipe: ≤ 5e-7 for o and L, ≤ 1.2e-6 for the gradients (≤ 2e-6 at
// N = 1024); the bounds leave a factor of ~10 for other adapters' exp/log and FMA.
const TOL_O = { rtol: 1e-5, atol: 1e-6 };
const TOL_GRAD = { rtol: 2e-5, atol: 1e-6 };
// fp16 storage, fp32 arithmetic, against float64 on the same fp16-rounded inputs: the
// output is rounded to fp16 once (2⁻¹¹ ≈ 4.9e-4 relative; observed ≤ 4.8e-4 of scale);
// gradients also read the rounded O and are rounded on store (observed ≤ 7.1e-4).
const TOL_F16_O = { rtol: 1.5e-3, atol: 1e-5 };
const TOL_F16_GRAD = { rtol: 2.5e-3, atol: 1e-5 };

interface Case {
  B: number;
  Nq: number;
  Nk: number;
  H: number;
  D: number;
  causal: boolean;
}

const dimsOf = (c: Case, scale = 1 / Math.sqrt(c.D)): AttentionDims => ({
  batch: c.B,
  nq: c.Nq,
  nk: c.Nk,
  heads: c.H,
  headDim: c.D,
  scale,
  causal: c.causal,
});

function data(c: Case, seed: number) {
  const r = rng(seed);
  const hd = c.H * c.D;
  // Scaled up so the softmax is peaked, not nearly uniform.
  return {
    q: r.normals(c.B * c.Nq * hd, 1.5),
    k: r.normals(c.B * c.Nk * hd, 1.5),
    v: r.normals(c.B * c.Nk * hd),
    dO: r.normals(c.B * c.Nq * hd),
  };
}

function upload(e: Engine, c: Case, d: ReturnType<typeof data>, dtype: 'f32' | 'f16' = 'f32') {
  const hd = c.H * c.D;
  return {
    q: e.tensor(d.q, [c.B, c.Nq, hd], { dtype }),
    k: e.tensor(d.k, [c.B, c.Nk, hd], { dtype }),
    v: e.tensor(d.v, [c.B, c.Nk, hd], { dtype }),
    dO: e.tensor(d.dO, [c.B, c.Nq, hd], { dtype }),
  };
}

// Odd lengths, a query count one past the 64-query workgroup, Nk = 77 (CLIP context) and
// 33 (partial key tiles of 32), every head width of the real models — 40/80/160 (SD 1.5
// UNet), 64 (SD 2.1 UNet, CLIP), 512 (the VAE's mid-block) — plus 8, an odd D = 5 that
// takes the scalar (non-vec4) path, D = 160 whose key tile is 12 rows; the wide kernels
// (D > 256) with rows not a multiple of their 8 (D = 512) rows per
// workgroup and partial passes of 32, and D = 270 (scalar, last slice shorter); 1–3 heads,
// causal and not, self- and cross-attention (Nq ≠ Nk, both ways).
const CASES: Case[] = [
  { B: 2, Nq: 33, Nk: 77, H: 3, D: 8, causal: false },
  { B: 2, Nq: 77, Nk: 77, H: 2, D: 40, causal: true },
  { B: 2, Nq: 65, Nk: 33, H: 1, D: 40, causal: false },
  { B: 2, Nq: 70, Nk: 70, H: 2, D: 5, causal: true },
  { B: 1, Nq: 13, Nk: 29, H: 1, D: 160, causal: false },
  { B: 1, Nq: 30, Nk: 30, H: 2, D: 160, causal: true },
  { B: 2, Nq: 33, Nk: 77, H: 3, D: 8, causal: true },
  { B: 1, Nq: 40, Nk: 40, H: 2, D: 64, causal: true },
  { B: 2, Nq: 21, Nk: 77, H: 2, D: 64, causal: false },
  { B: 1, Nq: 37, Nk: 19, H: 2, D: 80, causal: false },
  { B: 1, Nq: 45, Nk: 45, H: 1, D: 80, causal: true },
  { B: 2, Nq: 19, Nk: 37, H: 1, D: 512, causal: false },
  { B: 1, Nq: 45, Nk: 45, H: 1, D: 512, causal: true },
  { B: 1, Nq: 40, Nk: 24, H: 2, D: 512, causal: true },
  { B: 1, Nq: 17, Nk: 35, H: 1, D: 270, causal: false },
];
const label = (c: Case) => `B=${c.B} Nq=${c.Nq} Nk=${c.Nk} H=${c.H} D=${c.D}${c.causal ? ' causal' : ''}`;

describe('attention', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of attentionKernels) await e.compile(k);
    if (e.f16) for (const k of attentionF16Kernels) await e.compile(k);
    for (const k of attentionKernelsFor('f32', 5)) await e.compile(k);
  });

  it('key/query tiles fit 16 KiB of workgroup memory for every head dim up to 256', () => {
    for (let d = 1; d <= 256; d++) expect(2 * attentionTile(d) * d * 4).toBeLessThanOrEqual(16384);
    expect([40, 64, 80, 160].map(attentionTile)).toEqual([32, 32, 25, 12]);
  });

  it.each([false, true])('reference gradient matches central finite differences (causal %s)', (causal) => {
    const c: Case = { B: 2, Nq: 3, Nk: 4, H: 2, D: 3, causal };
    const d = data(c, 11);
    const dims = dimsOf(c, 0.7);
    gradcheck(
      ([q, k, v]) => attentionForwardRef(q, k, v, dims).o,
      ([q, k, v], dY) => {
        const g = attentionBackwardRef(q, k, v, dY, dims);
        return [g.dQ, g.dK, g.dV];
      },
      [f64(d.q), f64(d.k), f64(d.v)],
    );
  });

  it('reference: causal row 0 attends only to key 0; lse is the log partition function', () => {
    const c: Case = { B: 1, Nq: 2, Nk: 2, H: 1, D: 2, causal: true };
    const { o, lse } = attentionForwardRef([1, 2, 3, 4], [1, 0, 0, 1], [5, 6, 7, 8], dimsOf(c, 1));
    expect(Array.from(o.slice(0, 2))).toEqual([5, 6]);
    expect(lse[0]).toBeCloseTo(1, 12);
    expect(lse[1]).toBeCloseTo(Math.log(Math.exp(3) + Math.exp(4)), 12);
  });

  it.each(CASES.map((c) => [label(c), c] as const))('GPU forward matches the reference (%s)', async (_, c) => {
    const e = await testEngine();
    const d = data(c, c.Nq * 7 + c.D);
    const ref = attentionForwardRef(d.q, d.k, d.v, dimsOf(c));
    await e.scopeAsync(async () => {
      const t = upload(e, c, d);
      const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H, { causal: c.causal });
      expect(o.shape).toEqual([c.B, c.Nq, c.H * c.D]);
      expect(lse.shape).toEqual([c.B, c.H, c.Nq]);
      assertClose(await o.read(), ref.o, TOL_O, 'o');
      assertClose(await lse.read(), ref.lse, TOL_O, 'lse');
      // The tuned kernel against the naive GPU kernel (materialised scores + softmax).
      const naive = attentionNaiveForward(e, t.q, t.k, t.v, c.H, { causal: c.causal });
      assertClose(await naive.read(), ref.o, TOL_O, 'naive o vs reference');
      assertClose(await o.read(), await naive.read(), TOL_O, 'tuned o vs naive o');
    });
  });

  it.each(CASES.map((c) => [label(c), c] as const))('GPU backward matches the reference (%s)', async (_, c) => {
    const e = await testEngine();
    const d = data(c, c.Nq * 7 + c.D);
    const ref = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    await e.scopeAsync(async () => {
      const t = upload(e, c, d);
      const opts = { causal: c.causal };
      const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H, opts);
      const g = attentionBackward(e, t.q, t.k, t.v, o, lse, t.dO, c.H, opts);
      const dQ = await g.dQ!.read();
      const dK = await g.dK!.read();
      const dV = await g.dV!.read();
      assertClose(dQ, ref.dQ, TOL_GRAD, 'dQ');
      assertClose(dK, ref.dK, TOL_GRAD, 'dK');
      assertClose(dV, ref.dV, TOL_GRAD, 'dV');
      const naive = attentionNaiveBackward(e, t.q, t.k, t.v, t.dO, c.H, opts);
      assertClose(await naive.dQ.read(), ref.dQ, TOL_GRAD, 'naive dQ vs reference');
      assertClose(await naive.dK.read(), ref.dK, TOL_GRAD, 'naive dK vs reference');
      assertClose(await naive.dV.read(), ref.dV, TOL_GRAD, 'naive dV vs reference');
      assertClose(dQ, await naive.dQ.read(), TOL_GRAD, 'tuned dQ vs naive');
      assertClose(dK, await naive.dK.read(), TOL_GRAD, 'tuned dK vs naive');
      assertClose(dV, await naive.dV.read(), TOL_GRAD, 'tuned dV vs naive');
    });
  });

  it('honours an explicit scale', async () => {
    const e = await testEngine();
    const c: Case = { B: 1, Nq: 9, Nk: 11, H: 2, D: 4, causal: false };
    const d = data(c, 3);
    const dims = dimsOf(c, 0.9);
    await e.scopeAsync(async () => {
      const t = upload(e, c, d);
      const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H, { scale: 0.9 });
      assertClose(await o.read(), attentionForwardRef(d.q, d.k, d.v, dims).o, TOL_O, 'o');
      const g = attentionBackward(e, t.q, t.k, t.v, o, lse, t.dO, c.H, { scale: 0.9 });
      const ref = attentionBackwardRef(d.q, d.k, d.v, d.dO, dims);
      assertClose(await g.dQ!.read(), ref.dQ, TOL_GRAD, 'dQ');
      assertClose(await g.dK!.read(), ref.dK, TOL_GRAD, 'dK');
    });
  });

  // Forward only: the backward kernels share the same flat workgroup indexing, and each
  // 65537-workgroup dispatch costs seconds on the software adapter.
  it('more workgroups than one grid dimension holds (B = 65537)', async () => {
    const e = await testEngine();
    const c: Case = { B: 65537, Nq: 1, Nk: 2, H: 1, D: 4, causal: false };
    const d = data(c, 9);
    await e.scopeAsync(async () => {
      const t = upload(e, c, d);
      const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H);
      const ref = attentionForwardRef(d.q, d.k, d.v, dimsOf(c));
      assertClose(await o.read(), ref.o, TOL_O, 'o');
      assertClose(await lse.read(), ref.lse, TOL_O, 'lse');
    });
  });

  it('records on the tape: gradients reach q, k, v and everything is freed', async () => {
    const e = await testEngine();
    const c: Case = { B: 2, Nq: 10, Nk: 10, H: 2, D: 8, causal: true };
    const d = data(c, 5);
    const hd = c.H * c.D;
    const before = e.pool.getStats().liveBytes;
    const q = e.parameter(d.q, [c.B, c.Nq, hd], 'q');
    const k = e.parameter(d.k, [c.B, c.Nk, hd], 'k');
    const v = e.parameter(d.v, [c.B, c.Nk, hd], 'v');
    const y = e.scope(() => attention(q, k, v, c.H, { causal: true }));
    expect(y.shape).toEqual([c.B, c.Nq, hd]);
    const dY = e.tensor(d.dO, y.shape);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const ref = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    assertClose(await q.grad!.read(), ref.dQ, TOL_GRAD, 'q.grad');
    assertClose(await k.grad!.read(), ref.dK, TOL_GRAD, 'k.grad');
    assertClose(await v.grad!.read(), ref.dV, TOL_GRAD, 'v.grad');
    for (const t of [q, k, v]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('computes only the gradients asked for, and keeps nothing when not recording', async () => {
    const e = await testEngine();
    const c: Case = { B: 1, Nq: 5, Nk: 7, H: 1, D: 4, causal: false };
    const d = data(c, 6);
    const before = e.pool.getStats().liveBytes;
    const q = e.tensor(d.q, [1, 5, 4]);
    const k = e.tensor(d.k, [1, 7, 4]);
    const v = e.parameter(d.v, [1, 7, 4], 'v');
    const y = e.scope(() => attention(q, k, v, 1));
    const dY = e.tensor(d.dO, y.shape);
    e.backward(y, dY);
    assertClose(await v.grad!.read(), attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c)).dV, TOL_GRAD, 'v.grad');
    expect(q.grad).toBeNull();
    const g = e.scope(() => {
      const { o, lse } = attentionForward(e, q, k, v, 1);
      return attentionBackward(e, q, k, v, o, lse, e.tensor(d.dO, o.shape), 1, {}, { q: false, k: true, v: false });
    });
    expect(g.dQ).toBeNull();
    expect(g.dV).toBeNull();
    assertClose(await g.dK!.read(), attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c)).dK, TOL_GRAD, 'dK');
    g.dK!.dispose();
    // Without recording, the log-sum-exp buffer goes back to the pool with the forward.
    const live = e.pool.getStats().liveBytes;
    const o = e.noGrad(() => e.scope(() => attention(q, k, v, 1)));
    expect(e.pool.getStats().liveBytes - live).toBe(256); // o alone: 80 bytes in the smallest size class
    for (const t of [o, y, dY, q, k, v]) t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('never allocates an N×N buffer: forward + backward of N = 1024 tokens', async () => {
    const e = await testEngine();
    const c: Case = { B: 1, Nq: 1024, Nk: 1024, H: 1, D: 8, causal: false };
    const d = data(c, 8);
    const n = c.Nq;
    const q = e.parameter(d.q, [1, n, 8], 'q');
    const k = e.parameter(d.k, [1, n, 8], 'k');
    const v = e.parameter(d.v, [1, n, 8], 'v');
    const dY = e.tensor(d.dO, [1, n, 8]);
    e.pool.resetPeak();
    const y = e.scope(() => attention(q, k, v, 1));
    e.backward(y, dY);
    await e.sync();
    const stats = e.pool.getStats();
    // The largest buffers are q, k, v, dO and the gradients: N·D floats = 32 KiB. A score
    // matrix would need N·N floats = 4 MiB.
    expect(stats.largestBufferBytes).toBeLessThanOrEqual(n * 8 * 4);
    expect(stats.largestBufferBytes * 64).toBeLessThanOrEqual(n * n * 4);
    expect(stats.peakLiveBytes).toBeLessThan(n * n * 4);
    const ref = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    assertClose(await y.read(), attentionForwardRef(d.q, d.k, d.v, dimsOf(c)).o, TOL_O, 'o');
    assertClose(await q.grad!.read(), ref.dQ, TOL_GRAD, 'q.grad');
    assertClose(await k.grad!.read(), ref.dK, TOL_GRAD, 'k.grad');
    assertClose(await v.grad!.read(), ref.dV, TOL_GRAD, 'v.grad');
    for (const t of [y, dY, q, k, v]) t.dispose();
  });

  // The SD VAE's mid-block: one head of width 512 over 16×16 latent pixels (256 tokens).
  it('VAE mid-block width: N = 256, D = 512 fwd + bwd, no N×N buffer', async () => {
    const e = await testEngine();
    const c: Case = { B: 1, Nq: 256, Nk: 256, H: 1, D: 512, causal: false };
    const d = data(c, 13);
    const [n, w] = [c.Nq, c.D];
    const q = e.parameter(d.q, [1, n, w], 'q');
    const k = e.parameter(d.k, [1, n, w], 'k');
    const v = e.parameter(d.v, [1, n, w], 'v');
    const dY = e.tensor(d.dO, [1, n, w]);
    e.pool.resetPeak();
    const y = e.scope(() => attention(q, k, v, 1));
    e.backward(y, dY);
    await e.sync();
    const stats = e.pool.getStats();
    // Largest buffers: q, k, v, dO and the gradients, N·D floats = 512 KiB; scores would
    // be N·N floats = 256 KiB each, so also bound the total: inputs, output, dO, three
    // gradients, the backward's copy of dO and small (N) vectors.
    expect(stats.largestBufferBytes).toBeLessThanOrEqual(n * w * 4);
    expect(stats.peakLiveBytes).toBeLessThanOrEqual(9 * n * w * 4 + 64 * 1024);
    const ref = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    assertClose(await y.read(), attentionForwardRef(d.q, d.k, d.v, dimsOf(c)).o, TOL_O, 'o');
    assertClose(await q.grad!.read(), ref.dQ, TOL_GRAD, 'q.grad');
    assertClose(await k.grad!.read(), ref.dK, TOL_GRAD, 'k.grad');
    assertClose(await v.grad!.read(), ref.dV, TOL_GRAD, 'v.grad');
    for (const t of [y, dY, q, k, v]) t.dispose();
  });

  // Bindings above the limit: the batch runs in ranges of whole items (one per range here).
  // Row bytes are multiples of the 256-byte offset alignment (q: Nq·H·D·4, lse: H·Nq·4).
  it.each([
    { B: 3, Nq: 64, Nk: 32, H: 2, D: 40, causal: true, limit: 24576 },
    { B: 3, Nq: 64, Nk: 64, H: 1, D: 512, causal: false, limit: 131072 },
  ])('splits the batch under a low binding limit (D=$D, limit $limit)', async ({ limit, ...c }) => {
    const e = await testEngine();
    const d = data(c, 21);
    const fwd = attentionForwardRef(d.q, d.k, d.v, dimsOf(c));
    const bwd = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    const previous = e.maxBindingBytes;
    e.setBindingLimit(limit);
    try {
      await e.scopeAsync(async () => {
        const t = upload(e, c, d);
        expect(t.q.byteLength).toBeGreaterThan(limit);
        const opts = { causal: c.causal };
        const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H, opts);
        const g = attentionBackward(e, t.q, t.k, t.v, o, lse, t.dO, c.H, opts);
        assertClose(await o.read(), fwd.o, TOL_O, 'o');
        assertClose(await lse.read(), fwd.lse, TOL_O, 'lse');
        assertClose(await g.dQ!.read(), bwd.dQ, TOL_GRAD, 'dQ');
        assertClose(await g.dK!.read(), bwd.dK, TOL_GRAD, 'dK');
        assertClose(await g.dV!.read(), bwd.dV, TOL_GRAD, 'dV');
      });
    } finally {
      e.setBindingLimit(previous);
    }
  });

  it('fp16 storage (fp32 accumulation) matches the reference on fp16-rounded inputs', async () => {
    const e = await testEngineWithF16();
    const c: Case = { B: 2, Nq: 77, Nk: 77, H: 2, D: 40, causal: true };
    const raw = data(c, 12);
    const d = { q: roundToF16(raw.q), k: roundToF16(raw.k), v: roundToF16(raw.v), dO: roundToF16(raw.dO) };
    const opts = { causal: c.causal };
    const fwd = attentionForwardRef(d.q, d.k, d.v, dimsOf(c));
    const bwd = attentionBackwardRef(d.q, d.k, d.v, d.dO, dimsOf(c));
    await e.scopeAsync(async () => {
      const t = upload(e, c, d, 'f16');
      const { o, lse } = attentionForward(e, t.q, t.k, t.v, c.H, opts);
      expect(o.dtype).toBe('f16');
      expect(lse.dtype).toBe('f32');
      assertClose(await o.read(), fwd.o, TOL_F16_O, 'o (f16)');
      assertClose(await lse.read(), fwd.lse, TOL_O, 'lse (f16 inputs)');
      const g = attentionBackward(e, t.q, t.k, t.v, o, lse, t.dO, c.H, opts);
      expect(g.dQ!.dtype).toBe('f16');
      assertClose(await g.dQ!.read(), bwd.dQ, TOL_F16_GRAD, 'dQ (f16)');
      assertClose(await g.dK!.read(), bwd.dK, TOL_F16_GRAD, 'dK (f16)');
      assertClose(await g.dV!.read(), bwd.dV, TOL_F16_GRAD, 'dV (f16)');
    });
  });

  it('rejects what it cannot do', async () => {
    const e = await testEngine();
    e.scope(() => {
      const q = e.zeros([1, 4, 6]);
      expect(() => attention(q, e.zeros([1, 5, 6]), e.zeros([1, 4, 6]), 2)).toThrow(/shapes do not agree/);
      expect(() => attention(q, q, q, 4)).toThrow(/heads/);
      expect(() => attention(e.zeros([4, 6]), q, q, 1)).toThrow(/\(B, N, H·D\)/);
      const wide = () => e.zeros([1, 2, ATTENTION_MAX_HEAD_DIM + 1]);
      expect(() => attention(wide(), wide(), wide(), 1)).toThrow(/head dim 4097 > 4096/);
    });
  });
});
