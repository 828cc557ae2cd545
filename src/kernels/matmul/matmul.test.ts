import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { matmulBackwardRef, matmulForwardRef, matmulShapeRef } from './matmul-reference.ts';
import {
  matmulBackward,
  matmulForward,
  matmulKernels,
  matmulKernelVariants,
  isSoftwareAdapter,
  matmulPlanLabel,
  pickMatmulTile,
  type MatmulImpl,
  type MatmulTileConfig,
} from './matmul-kernels.ts';
import { matmul } from './matmul.ts';

interface Case {
  a: number[];
  b: number[];
  transA?: boolean;
  transB?: boolean;
}

const IMPLS: MatmulImpl[] = ['naive', 'tiled', 'direct'];
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const label = (c: Case) => `a[${c.a}]${c.transA ? 'ᵀ' : ''}·b[${c.b}]${c.transB ? 'ᵀ' : ''}`;

// fp32 GPU vs float64 reference: K ≤ ~130 products of N(0,1) values, so rounding stays
// well under 1e-5 of the output's scale (observed ≈ 5e-7).
const F32_TOL = { rtol: 2e-5, atol: 1e-6 };

// Odd sizes, sizes that are not multiples of a tile (16, 32, 64) nor of 4 (scalar loads),
// multiples of 4 (vec4 loads), every transpose, batches, and a 2-D operand shared by a batch.
const CASES: Case[] = [
  { a: [1, 1], b: [1, 1] },
  { a: [5, 3], b: [3, 7] },
  { a: [37, 19], b: [19, 45] },
  { a: [2, 37, 19], b: [19, 45] },
  { a: [2, 3, 9, 13], b: [2, 3, 13, 6] },
  { a: [33, 70], b: [33, 65], transA: true },
  { a: [2, 70, 33], b: [65, 33], transB: true },
  { a: [2, 33, 70], b: [2, 65, 33], transA: true, transB: true },
  { a: [40, 64], b: [2, 64, 36] }, // shared A
  { a: [3, 20, 16], b: [24, 20], transA: true, transB: true }, // vec4 everywhere, shared B
  { a: [2, 68, 36], b: [2, 36, 72] }, // vec4 loads, more than one 64-wide tile each way
  { a: [3, 0], b: [0, 4] }, // K = 0: zeros
];

async function checkCase(c: Case, impl: MatmulImpl, seed: number, tile?: MatmulTileConfig): Promise<void> {
  const e = await testEngine();
  const r = rng(seed);
  const as = r.normals(size(c.a));
  const bs = r.normals(size(c.b));
  const o = { transA: c.transA, transB: c.transB };
  const yShape = matmulShapeRef(c.a, c.b, o);
  const dYs = r.normals(size(yShape));
  await e.scopeAsync(async () => {
    const a = e.tensor(as, c.a);
    const b = e.tensor(bs, c.b);
    const dY = e.tensor(dYs, yShape);
    const y = matmulForward(e, a, b, { ...o, impl, tile });
    expect(y.shape).toEqual(yShape);
    assertClose(await y.read(), matmulForwardRef(as, c.a, bs, c.b, o), F32_TOL, `y ${label(c)} ${impl}`);
    const [dA, dB] = matmulBackward(e, a, b, dY, { ...o, impl, tile });
    const [dAr, dBr] = matmulBackwardRef(as, c.a, bs, c.b, dYs, o);
    expect(dA!.shape).toEqual(c.a);
    expect(dB!.shape).toEqual(c.b);
    assertClose(await dA!.read(), dAr, F32_TOL, `dA ${label(c)} ${impl}`);
    assertClose(await dB!.read(), dBr, F32_TOL, `dB ${label(c)} ${impl}`);
  });
}

describe('matmul', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of matmulKernels) await e.compile(k);
  });

  it.each([
    { a: [4, 3], b: [3, 5] },
    { a: [3, 4], b: [5, 3], transA: true, transB: true },
    { a: [2, 3, 4], b: [4, 2] }, // shared B: dB sums over the batch
    { a: [4, 3], b: [2, 5, 4], transA: true, transB: true }, // shared A
    { a: [2, 4, 3], b: [2, 4, 2], transA: true },
  ] as Case[])('reference gradient matches central finite differences ($a, $b)', (c) => {
    const r = rng(size(c.a) + size(c.b));
    const o = { transA: c.transA, transB: c.transB };
    gradcheck(
      ([a, b]) => matmulForwardRef(a, c.a, b, c.b, o),
      ([a, b], dY) => matmulBackwardRef(a, c.a, b, c.b, dY, o),
      [f64(r.normals(size(c.a))), f64(r.normals(size(c.b)))],
    );
  });

  it.each(CASES.map((c, i) => [label(c), c, i] as const))(
    'GPU forward and backward match the reference, every kernel (%s)',
    async (_name, c, i) => {
      for (const impl of IMPLS) await checkCase(c, impl, 100 + i);
    },
  );

  // Non-square tiles and tiles with fewer invocations than tile rows × K-slice; 130×70
  // outputs and K = 100 leave partial tiles and a partial K-slice. The three products
  // (forward, dA, dB) mix vec4 and scalar loads: a, b vec4 with scalar stores; then
  // scalar a with vec4 b and stores.
  it.each([
    ['tiled', { wx: 16, wy: 8, tk: 32 }],
    ['tiled', { wx: 4, wy: 16, tk: 32 }],
    ['direct', { wx: 4, wy: 16, tk: 0 }],
  ] as [MatmulImpl, MatmulTileConfig][])('%s kernel with tile %o matches the reference', async (impl, tile) => {
    await checkCase({ a: [130, 100], b: [70, 100], transB: true }, impl, 7, tile);
  });

  it('tuned kernels match the naive kernel on a larger product', async () => {
    const e = await testEngine();
    const [M, K, N] = [150, 200, 131];
    const r = rng(11);
    await e.scopeAsync(async () => {
      const a = e.tensor(r.normals(M * K), [M, K]);
      const b = e.tensor(r.normals(K * N), [K, N]);
      const naive = await matmulForward(e, a, b, { impl: 'naive' }).read();
      for (const impl of ['tiled', 'direct'] as const) {
        const tuned = await matmulForward(e, a, b, { impl }).read();
        assertClose(tuned, naive, { rtol: 1e-5, atol: 1e-6 }, `${impl} vs naive`);
      }
    });
  });

  it('picks a kernel and tile the kernels accept', async () => {
    const e = await testEngine();
    for (const [M, N, K] of [
      [1, 1, 1],
      [1024, 1024, 1024],
      [4096, 40, 320],
    ]) {
      for (const impl of [undefined, ...IMPLS]) {
        const plan = pickMatmulTile(e, M, N, K, impl);
        if (impl) expect(plan.impl).toBe(impl);
        expect(plan.tile.wx * plan.tile.wy).toBeLessThanOrEqual(256);
        if (plan.impl === 'tiled') expect(plan.tile.tk % 4).toBe(0);
        expect(matmulPlanLabel(plan)).toContain(plan.impl);
      }
    }
    // CPU adapters get the kernel without workgroup memory.
    expect(pickMatmulTile(e, 1024, 1024, 1024).impl).toBe(isSoftwareAdapter(e) ? 'direct' : 'tiled');
  });

  it('rejects mismatched shapes and dtypes', async () => {
    const e = await testEngine();
    e.scope(() => {
      const a = e.zeros([2, 3, 4]);
      expect(() => matmulForward(e, a, e.zeros([5, 6]))).toThrow(/inner dimensions/);
      expect(() => matmulForward(e, a, e.zeros([3, 4, 2]))).toThrow(/batch dimensions/);
      expect(() => matmulForward(e, e.zeros([4]), e.zeros([4, 2]))).toThrow(/rank/);
    });
  });

  // fp16 storage, f32 accumulation. The reference sees the same f16-rounded inputs, so the
  // only difference is the final rounding of each output to f16 (≤ 2⁻¹¹ relative) plus f32
  // summation order: 2e-3 of the output's scale.
  it('f16 storage variant matches the fp32 reference on f16-rounded inputs', async (ctx) => {
    const e = await testEngine();
    ctx.skip(!e.f16, 'adapter lacks shader-f16: no f16 matmul to test');
    for (const k of matmulKernelVariants('f16')) await e.compile(k);
    const tol = { rtol: 2e-3, atol: 1e-4 };
    const cases: Case[] = [
      { a: [2, 37, 19], b: [19, 45] }, // scalar loads and stores, shared B
      { a: [2, 36, 68], b: [2, 72, 36], transA: true, transB: true }, // vec4, two 64-wide tiles
    ];
    for (const [i, c] of cases.entries()) {
      const r = rng(300 + i);
      const o = { transA: c.transA, transB: c.transB };
      const as = roundToF16(r.normals(size(c.a)));
      const bs = roundToF16(r.normals(size(c.b)));
      const yShape = matmulShapeRef(c.a, c.b, o);
      const dYs = roundToF16(r.normals(size(yShape)));
      const [dAr, dBr] = matmulBackwardRef(as, c.a, bs, c.b, dYs, o);
      for (const impl of IMPLS) {
        await e.scopeAsync(async () => {
          const a = e.tensor(as, c.a, { dtype: 'f16' });
          const b = e.tensor(bs, c.b, { dtype: 'f16' });
          const dY = e.tensor(dYs, yShape, { dtype: 'f16' });
          const y = matmulForward(e, a, b, { ...o, impl });
          expect(y.dtype).toBe('f16');
          assertClose(await y.read(), matmulForwardRef(as, c.a, bs, c.b, o), tol, `f16 y ${label(c)} ${impl}`);
          const [dA, dB] = matmulBackward(e, a, b, dY, { ...o, impl });
          assertClose(await dA!.read(), dAr, tol, `f16 dA ${label(c)} ${impl}`);
          assertClose(await dB!.read(), dBr, tol, `f16 dB ${label(c)} ${impl}`);
        });
      }
    }
  });

  it('records on the tape: grads reach both leaves (shared B sums over the batch) and nothing leaks', async () => {
    const e = await testEngine();
    const r = rng(21);
    const aShape = [3, 6, 5];
    const bShape = [7, 5];
    const o = { transB: true };
    const as = r.normals(size(aShape));
    const bs = r.normals(size(bShape));
    const dYs = r.normals(3 * 6 * 7);
    const before = e.pool.getStats().liveBytes;
    const a = e.parameter(as, aShape, 'a');
    const b = e.parameter(bs, bShape, 'b');
    const y = e.scope(() => matmul(a, b, o));
    expect(y.shape).toEqual([3, 6, 7]);
    const dY = e.tensor(dYs, [3, 6, 7]);
    e.backward(y, dY);
    y.dispose();
    dY.dispose();
    const [dAr, dBr] = matmulBackwardRef(as, aShape, bs, bShape, dYs, o);
    assertClose(await a.grad!.read(), dAr, F32_TOL, 'a.grad');
    assertClose(await b.grad!.read(), dBr, F32_TOL, 'b.grad');
    a.dispose();
    b.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });

  it('skips the gradient of an input that does not require grad', async () => {
    const e = await testEngine();
    const r = rng(22);
    const w = e.parameter(r.normals(12), [4, 3], 'w');
    await e.scopeAsync(async () => {
      const x = e.tensor(r.normals(10), [5, 2]);
      const y = matmul(x, e.tensor(r.normals(8), [2, 4]));
      const z = matmul(y, w);
      const seed = e.full(z.shape, 1);
      const dispatches = e.dispatchCount;
      e.backward(z, seed);
      // dW only (the engine's copy of the seed is a buffer copy, not a dispatch): x·c was
      // never recorded (nothing in it requires grad) and z's node skips the gradient of y.
      expect(e.dispatchCount - dispatches).toBe(1);
      expect(w.grad!.shape).toEqual([4, 3]);
    });
    w.dispose();
  });
});
