import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { cosineSimilarityBackwardRef, cosineSimilarityForwardRef, topKRef } from './cosine-top-k-reference.ts';
import {
  cosineSimilarityBackward,
  cosineSimilarityForward,
  cosineTopKKernels,
  rowNorms,
  topKForward,
} from './cosine-top-k-kernels.ts';
import { cosineSimilarity, topK } from './cosine-top-k.ts';

// fp32 dot products over C ≤ 100 channels against float64: 1e-5 relative to the largest
// |S| (≤ 1) or gradient entry, plus 1e-6 absolute.
const TOL = { rtol: 1e-5, atol: 1e-6 };

describe('cosine similarity', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of cosineTopKKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences (both inputs)', () => {
    const [M, N, C] = [3, 4, 5];
    const r = rng(1);
    const a = f64(r.normals(M * C));
    const b = f64(r.normals(N * C, 3));
    gradcheck(
      ([a, b]) => cosineSimilarityForwardRef(a, b, M, N, C),
      ([a, b], dS) => cosineSimilarityBackwardRef(a, b, dS, M, N, C),
      [a, b],
    );
  });

  // Shapes around the 4 × 64 × 32 tile of the tuned forward and the 256-wide workgroups:
  // single elements, M not a multiple of 4, N not a multiple of 64, C not a multiple of 32,
  // several tiles in each direction, and the real use's M = 1 with a longer N.
  it.each([
    { M: 1, N: 1, C: 1 },
    { M: 3, N: 5, C: 7 },
    { M: 5, N: 70, C: 33 },
    { M: 9, N: 130, C: 100 },
    { M: 1, N: 600, C: 64 },
    { M: 17, N: 3, C: 40 },
  ])('GPU forward (tiled and naive) and backward match the reference (M=$M, N=$N, C=$C)', async ({ M, N, C }) => {
    const e = await testEngine();
    const r = rng(M * 10000 + N * 100 + C);
    const as = r.normals(M * C);
    const bs = r.normals(N * C, 2);
    const dSs = r.normals(M * N);
    await e.scopeAsync(async () => {
      const a = e.tensor(as, [M, C]);
      const b = e.tensor(bs, [N, C]);
      const na = rowNorms(e, a);
      const nb = rowNorms(e, b);
      const want = cosineSimilarityForwardRef(as, bs, M, N, C);
      const tiled = cosineSimilarityForward(e, a, b, na, nb);
      const naive = cosineSimilarityForward(e, a, b, na, nb, { naive: true });
      expect(tiled.shape).toEqual([M, N]);
      const tiledS = await tiled.read();
      assertClose(tiledS, want, TOL, 'S (tiled)');
      assertClose(await naive.read(), want, TOL, 'S (naive)');
      assertClose(tiledS, await naive.read(), { rtol: 1e-6, atol: 1e-7 }, 'S tiled vs naive');
      const [dA, dB] = cosineSimilarityBackward(e, a, b, na, nb, tiled, e.tensor(dSs, [M, N]));
      const [wantA, wantB] = cosineSimilarityBackwardRef(as, bs, dSs, M, N, C);
      assertClose(await dA!.read(), wantA, TOL, 'dA');
      assertClose(await dB!.read(), wantB, TOL, 'dB');
    });
  });

  it('zero and tiny rows (norm ≤ eps) give the clamped-norm value and gradient (no NaN), like torch', async () => {
    const e = await testEngine();
    const [M, N, C] = [3, 4, 6];
    const r = rng(8);
    const as = r.normals(M * C);
    as.fill(0, C, 2 * C); // row 1 of a is zero
    // Row 2 is tiny but not zero (norm ≈ 5e-9 < eps): its norm is clamped, so the gradient
    // loses the −S·a/‖a‖² term.
    for (let c = 0; c < C; c++) as[2 * C + c] *= 5e-9 / Math.sqrt(C);
    const bs = r.normals(N * C);
    const dSs = r.normals(M * N);
    await e.scopeAsync(async () => {
      const a = e.tensor(as, [M, C]);
      const b = e.tensor(bs, [N, C]);
      const na = rowNorms(e, a);
      const nb = rowNorms(e, b);
      const S = cosineSimilarityForward(e, a, b, na, nb);
      const got = await S.read();
      assertClose(got, cosineSimilarityForwardRef(as, bs, M, N, C), TOL, 'S');
      expect([...got.slice(N, 2 * N)]).toEqual([0, 0, 0, 0]);
      const [dA, dB] = cosineSimilarityBackward(e, a, b, na, nb, S, e.tensor(dSs, [M, N]));
      const [wantA, wantB] = cosineSimilarityBackwardRef(as, bs, dSs, M, N, C);
      const gotA = await dA!.read();
      // Row by row: rows 1 and 2 have gradients ~1e8 (1/eps), row 0 has O(1).
      for (let i = 0; i < M; i++) {
        assertClose(gotA.slice(i * C, (i + 1) * C), wantA.slice(i * C, (i + 1) * C), TOL, `dA row ${i}`);
      }
      assertClose(await dB!.read(), wantB, TOL, 'dB');
    });
  });

  it('records on the tape: gradients reach both inputs (and a shared input twice), nothing leaks', async () => {
    const e = await testEngine();
    const [M, N, C] = [2, 5, 9];
    const r = rng(31);
    const as = r.normals(M * C);
    const bs = r.normals(N * C);
    const dSs = r.normals(M * N);
    const before = e.pool.getStats().liveBytes;
    const a = e.parameter(as, [M, C], 'v_star');
    const b = e.parameter(bs, [N, C], 'neighbours');
    const S = e.scope(() => cosineSimilarity(a, b));
    expect(S.shape).toEqual([M, N]);
    assertClose(await S.read(), cosineSimilarityForwardRef(as, bs, M, N, C), TOL, 'S');
    const dS = e.tensor(dSs, [M, N]);
    e.backward(S, dS);
    S.dispose();
    dS.dispose();
    const [wantA, wantB] = cosineSimilarityBackwardRef(as, bs, dSs, M, N, C);
    assertClose(await a.grad!.read(), wantA, TOL, 'a.grad');
    assertClose(await b.grad!.read(), wantB, TOL, 'b.grad');
    b.dispose();

    // cos(a, a): both gradients land on the same parameter.
    a.grad!.dispose();
    a.grad = null;
    const dSelf = r.normals(M * M);
    const S2 = e.scope(() => cosineSimilarity(a, a));
    const dS2 = e.tensor(dSelf, [M, M]);
    e.backward(S2, dS2);
    S2.dispose();
    dS2.dispose();
    const [sa, sb] = cosineSimilarityBackwardRef(as, as, dSelf, M, M, C);
    assertClose(
      await a.grad!.read(),
      sa.map((v, i) => v + sb[i]),
      TOL,
      'a.grad (self)',
    );
    a.dispose();

    // No grad needed: no tape node, norms freed.
    e.scope(() => {
      cosineSimilarity(e.tensor(as, [M, C]), e.tensor(bs, [N, C]));
    });
    expect(e.tape.length).toBe(0);
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('rejects mismatched channels and non-matrices', async () => {
    const e = await testEngine();
    e.scope(() => {
      expect(() =>
        cosineSimilarity(e.tensor(new Float32Array(6), [2, 3]), e.tensor(new Float32Array(8), [2, 4])),
      ).toThrow(/differ in channels/);
      expect(() => cosineSimilarity(e.tensor(new Float32Array(6), [6]), e.tensor(new Float32Array(6), [2, 3]))).toThrow(
        /matrix/,
      );
    });
  });
});

describe('top-k', () => {
  it('reference: ties to the lower index, excluded columns skipped', () => {
    const { values, indices } = topKRef([0.5, 0.9, 0.5, 0.9, 0.1, 0.9], 1, 6, 4, [3]);
    expect([...indices]).toEqual([1, 5, 0, 2]);
    expect([...values]).toEqual([0.9, 0.9, 0.5, 0.5]);
  });

  // Segments of 1024 (the default) and of 64/16 to exercise several merge passes; N not a
  // multiple of the segment; heavy ties (scores on a coarse grid); exclusions at both ends.
  it.each([
    { M: 1, N: 10, k: 3, segment: 1024, ties: false, exclude: [] as number[] },
    { M: 3, N: 1000, k: 10, segment: 64, ties: true, exclude: [0, 5, 999] },
    { M: 2, N: 333, k: 8, segment: 16, ties: true, exclude: [1, 2, 3] },
    { M: 2, N: 4999, k: 64, segment: 1024, ties: false, exclude: [17, 4998] },
    { M: 4, N: 2100, k: 1, segment: 1024, ties: true, exclude: [] },
    { M: 1, N: 40, k: 20, segment: 64, ties: true, exclude: Array.from({ length: 20 }, (_, j) => 2 * j) },
  ])('GPU matches the reference (M=$M, N=$N, k=$k, segment=$segment, ties=$ties)', async (c) => {
    const e = await testEngine();
    const r = rng(c.N + c.k);
    const s = c.ties ? Float32Array.from({ length: c.M * c.N }, () => r.int(-3, 3) / 4) : r.normals(c.M * c.N);
    // Make an excluded column the largest score of every row: it must still not appear.
    for (const j of c.exclude) for (let i = 0; i < c.M; i++) s[i * c.N + j] = 10;
    const want = topKRef(s, c.M, c.N, c.k, c.exclude);
    await e.scopeAsync(async () => {
      const scores = e.tensor(s, [c.M, c.N]);
      const got = await topK(scores, c.k, new Set(c.exclude), c.segment);
      expect([...got.indices]).toEqual([...want.indices]);
      expect([...got.values]).toEqual([...want.values]);
      const excluded = new Set(c.exclude);
      expect(got.indices.some((j) => excluded.has(j))).toBe(false);
    });
  });

  it('finds the nearest vocabulary rows of a vector (49408 rows, specials excluded)', async () => {
    const e = await testEngine();
    const [V, C, k] = [49408, 8, 5];
    const r = rng(77);
    const table = r.normals(V * C);
    const v = table.slice(1234 * C, 1235 * C).map((x, i) => x + 0.01 * (i % 3));
    // Make the specials (bos 49406, eos 49407) exact matches: they must still be skipped.
    table.set(v, 49406 * C);
    table.set(v, 49407 * C);
    const specials = [49406, 49407];
    await e.scopeAsync(async () => {
      const S = e.noGrad(() => cosineSimilarity(e.tensor(v, [1, C]), e.tensor(table, [V, C])));
      const s = await S.read();
      // Selection checked against the reference on the GPU's own scores (fp32 rounding may
      // reorder near-equal scores relative to float64); the scores against float64 above.
      const want = topKRef(s, 1, V, k, specials);
      const got = await topK(S, k, specials);
      expect([...got.indices]).toEqual([...want.indices]);
      expect(got.indices[0]).toBe(1234);
      expect([...got.values]).toEqual([...want.values]);
    });
  });

  it('rejects k out of range, too many exclusions and bad ids', async () => {
    const e = await testEngine();
    e.scope(() => {
      const s = e.tensor(new Float32Array(12), [2, 6]);
      expect(() => topKForward(e, s, 0)).toThrow(/k = 0/);
      expect(() => topKForward(e, s, 513)).toThrow(/k = 513/);
      expect(() => topKForward(e, s, 4, [0, 1, 2])).toThrow(/only 3 of 6/);
      expect(() => topKForward(e, s, 1, [6])).toThrow(/excluded id 6/);
      expect(() => topKForward(e, s, 1, [], 48)).toThrow(/power of two/);
    });
  });
});
