import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { embeddingBackwardRef, embeddingForwardRef } from './embedding-reference.ts';
import { embeddingBackward, embeddingForward, embeddingKernels, scatterPlan } from './embedding-kernels.ts';
import { embedding } from './embedding.ts';

// Gather and scatter move values without arithmetic except the scatter's sums of
// duplicates (fp32, a few terms): 1e-6 relative-to-scale is ample and still catches any
// misplaced row.
const TOL = { rtol: 1e-6, atol: 1e-7 };

const randomIds = (seed: number, P: number, V: number): number[] => {
  const r = rng(seed);
  return Array.from({ length: P }, () => r.int(0, V - 1));
};

describe('embedding', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of embeddingKernels) await e.compile(k);
  });

  it('reference gradient matches central finite differences (duplicate ids included)', () => {
    const V = 6;
    const C = 5;
    const ids = [3, 0, 3, 5, 3, 1, 0];
    const table = f64(rng(1).normals(V * C));
    gradcheck(
      ([t]) => embeddingForwardRef(ids, t, C),
      (_xs, dY) => [embeddingBackwardRef(ids, dY, V, C)],
      [table],
    );
  });

  it('scatter plan groups positions by id, ids ascending, positions in order', () => {
    const { plan, distinct } = scatterPlan([4, 1, 4, 4, 0]);
    expect(distinct).toBe(3);
    // rows | starts | positions
    expect([...plan]).toEqual([0, 1, 4, 0, 1, 2, 5, 4, 1, 0, 2, 3]);
  });

  // Odd channel counts, P·C below and above the 256-wide workgroup, heavy duplication, a
  // single id repeated everywhere, and a large vocabulary where only a few rows are touched.
  it.each([
    { V: 5, C: 3, P: 1, seed: 1 },
    { V: 4, C: 7, P: 40, seed: 2 },
    { V: 50, C: 33, P: 300, seed: 3 },
    { V: 9, C: 1, P: 513, seed: 4 },
    { V: 3000, C: 12, P: 77, seed: 5 },
  ])('GPU forward and backward match the reference (V=$V, C=$C, P=$P)', async ({ V, C, P, seed }) => {
    const e = await testEngine();
    const r = rng(seed);
    const tableData = r.normals(V * C);
    const dYData = r.normals(P * C);
    const ids = randomIds(seed + 100, P, V);
    await e.scopeAsync(async () => {
      const table = e.tensor(tableData, [V, C]);
      const dY = e.tensor(dYData, [P, C]);
      const y = embeddingForward(e, ids, table);
      expect(y.shape).toEqual([P, C]);
      assertClose(await y.read(), embeddingForwardRef(ids, tableData, C), TOL, 'y');
      const dTable = embeddingBackward(e, ids, dY, V);
      expect(dTable.shape).toEqual([V, C]);
      const got = await dTable.read();
      const want = embeddingBackwardRef(ids, dYData, V, C);
      assertClose(got, want, TOL, 'dTable');
      // Rows no id touches must be exactly zero (the zero fill, not leftovers of the pool).
      const used = new Set(ids);
      for (let v = 0; v < V; v++) {
        if (!used.has(v)) for (let c = 0; c < C; c++) expect(got[v * C + c]).toBe(0);
      }
    });
  });

  it('accumulates many duplicates of one id exactly like the reference', async () => {
    const e = await testEngine();
    const V = 3;
    const C = 5;
    const P = 1000;
    const ids = new Array<number>(P).fill(2);
    const dYData = rng(9).normals(P * C);
    await e.scopeAsync(async () => {
      const dTable = embeddingBackward(e, ids, e.tensor(dYData, [P, C]), V);
      // 1000-term fp32 sums: 1e-5 relative to the largest row sum.
      assertClose(await dTable.read(), embeddingBackwardRef(ids, dYData, V, C), { rtol: 1e-5, atol: 1e-5 }, 'dTable');
    });
  });

  it('rejects ids outside [0, V), non-integer ids and non-f32 tables', async () => {
    const e = await testEngine();
    e.scope(() => {
      const table = e.tensor(new Float32Array(8), [4, 2]);
      expect(() => embedding([0, 4], table)).toThrow(/id 4 at position 1/);
      expect(() => embedding([-1], table)).toThrow(/id -1/);
      expect(() => embedding([1.5], table)).toThrow(/id 1.5/);
      expect(() => embedding([], table)).toThrow(/no ids/);
      expect(() => embedding([1, 2, 3], table, [2, 2])).toThrow(/idsShape/);
      if (e.f16) expect(() => embedding([0], e.tensor(new Float32Array(8), [4, 2], { dtype: 'f16' }))).toThrow(/f32/);
    });
  });

  it('records on the tape: (B, T) ids → (B, T, C); backward reaches table.grad and frees everything', async () => {
    const e = await testEngine();
    const V = 11;
    const C = 6;
    const idsShape = [2, 4];
    const ids = Int32Array.from([1, 7, 7, 0, 10, 1, 1, 3]);
    const tableData = rng(21).normals(V * C);
    const dYData = rng(22).normals(ids.length * C);
    const before = e.pool.getStats().liveBytes;
    const table = e.parameter(tableData, [V, C], 'token_embedding.weight');
    const y = e.scope(() => embedding(ids, table, idsShape));
    expect(y.shape).toEqual([2, 4, C]);
    ids.fill(0); // the op kept its own copy for backward
    assertClose(await y.read(), embeddingForwardRef([1, 7, 7, 0, 10, 1, 1, 3], tableData, C), TOL, 'y');
    const dY = e.tensor(dYData, [2, 4, C]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const want = embeddingBackwardRef([1, 7, 7, 0, 10, 1, 1, 3], dYData, V, C);
    assertClose(await table.grad!.read(), want, TOL, 'table.grad');
    table.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
