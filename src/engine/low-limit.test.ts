// Every op that splits its work to respect the storage binding limit, run with an
// artificially low limit (LIMIT bytes) so that small shapes take the split paths real model
// sizes take (the 49408×768 CLIP table, 512 px VAE activations), forward and backward,
// against the float64 CPU references. Each case asserts that its largest tensor is indeed
// above the limit: the engine throws BindingLimitError on any binding that is not split, so
// passing means the op split and still computed the right numbers.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine, testEngineWithoutF16 } from '../../test/engine.ts';
import { rng } from '../../test/random.ts';
import {
  cosineSimilarityBackwardRef,
  cosineSimilarityForwardRef,
  topKRef,
} from '../kernels/cosine-top-k/cosine-top-k-reference.ts';
import { cosineSimilarity, topK } from '../kernels/cosine-top-k/cosine-top-k.ts';
import { binaryBackwardRef, binaryForwardRef } from '../kernels/binary/binary-reference.ts';
import { add, div, mul, scale, sub } from '../kernels/binary/binary.ts';
import {
  concatBackwardRef,
  concatForwardRef,
  sliceBackwardRef,
  sliceForwardRef,
} from '../kernels/concat/concat-reference.ts';
import { concat } from '../kernels/concat/concat.ts';
import { slice } from '../kernels/concat/slice.ts';
import { conv2dGeometry } from '../kernels/conv2d/conv2d-kernels.ts';
import { conv2dBackwardRef, conv2dForwardRef, convOutputSize } from '../kernels/conv2d/conv2d-reference.ts';
import { conv2d } from '../kernels/conv2d/conv2d.ts';
import { embeddingBackwardRef, embeddingForwardRef } from '../kernels/embedding/embedding-reference.ts';
import { embedding } from '../kernels/embedding/embedding.ts';
import { gegluBackwardRef, gegluForwardRef } from '../kernels/geglu/geglu-reference.ts';
import { geglu } from '../kernels/geglu/geglu.ts';
import { geluGradRef, geluRef } from '../kernels/gelu/gelu-reference.ts';
import { gelu } from '../kernels/gelu/gelu.ts';
import { linearBackwardRef, linearForwardRef } from '../kernels/linear/linear-reference.ts';
import { linear } from '../kernels/linear/linear.ts';
import { matmulBackwardRef, matmulForwardRef } from '../kernels/matmul/matmul-reference.ts';
import { matmul } from '../kernels/matmul/matmul.ts';
import { mseBackwardRef, mseForwardRef } from '../kernels/mse-loss/mse-loss-reference.ts';
import { mseLoss } from '../kernels/mse-loss/mse-loss.ts';
import { quickGeluBackwardRef, quickGeluForwardRef } from '../kernels/quick-gelu/quick-gelu-reference.ts';
import { quickGelu } from '../kernels/quick-gelu/quick-gelu.ts';
import { meanForwardRef, sumBackwardRef, sumForwardRef } from '../kernels/reduce/reduce-reference.ts';
import { mean, sum } from '../kernels/reduce/reduce.ts';
import { siluBackwardRef, siluForwardRef } from '../kernels/silu/silu-reference.ts';
import { silu } from '../kernels/silu/silu.ts';
import { softmaxBackwardRef, softmaxForwardRef } from '../kernels/softmax/softmax-reference.ts';
import { softmax } from '../kernels/softmax/softmax.ts';
import { transposeBackwardRef, transposeForwardRef } from '../kernels/transpose/transpose-reference.ts';
import { transpose } from '../kernels/transpose/transpose.ts';
import { upsampleNearest2xBackwardRef, upsampleNearest2xForwardRef } from '../kernels/upsample/upsample-reference.ts';
import { upsampleNearest2x } from '../kernels/upsample/upsample.ts';
import { groupNormBackwardRef, groupNormForwardRef } from '../kernels/group-norm/group-norm-reference.ts';
import { groupNorm } from '../kernels/group-norm/group-norm.ts';
import { layerNormBackwardRef, layerNormForwardRef } from '../kernels/layer-norm/layer-norm-reference.ts';
import { layerNorm } from '../kernels/layer-norm/layer-norm.ts';
import { roundToF16 } from './dtype.ts';
import type { Engine } from './engine.ts';
import type { Tensor } from './tensor.ts';

const LIMIT = 4096;

async function withLimit(fn: (e: Engine) => Promise<void>): Promise<void> {
  const e = await testEngine();
  e.setBindingLimit(LIMIT);
  try {
    await e.scopeAsync(() => fn(e));
  } finally {
    e.setBindingLimit(undefined);
  }
}

const above = (t: Tensor) =>
  expect(t.byteLength, `${t} must exceed the ${LIMIT}-byte test limit`).toBeGreaterThan(LIMIT);

// Split paths reorder nothing within a sum except where noted, so the kernels' own
// tolerances apply: gathers and scatters are exact up to fp32 sums of duplicates.
const EXACT = { rtol: 1e-6, atol: 1e-7 };
// Dot products over C in fp32 against float64.
const DOT = { rtol: 1e-5, atol: 1e-6 };
// Norms: fp32 mean/variance over a few hundred values and (backward) sums over images.
const NORM = { rtol: 1e-4, atol: 1e-5 };
// Convolutions: fp32 sums of up to a few thousand products, split into partial sums.
const CONV = { rtol: 1e-4, atol: 1e-5 };

describe('ops under a low binding limit match the references', () => {
  it('embedding gather and scatter gradient (table split by rows)', async () => {
    await withLimit(async (e) => {
      const [V, C, P] = [300, 8, 50];
      const r = rng(11);
      const tableData = r.normals(V * C);
      const ids = Array.from({ length: P }, (_, i) => (i % 7 === 0 ? 3 : r.int(0, V - 1)));
      ids[1] = V - 1;
      const table = e.tensor(tableData, [V, C], { requiresGrad: true });
      above(table);
      const y = embedding(ids, table, [5, 10]);
      expect(y.shape).toEqual([5, 10, C]);
      assertClose(await y.read(), embeddingForwardRef(ids, tableData, C), EXACT, 'y');
      const dYData = r.normals(P * C);
      e.backward(y, e.tensor(dYData, [5, 10, C]));
      assertClose(await table.grad!.read(), embeddingBackwardRef(ids, dYData, V, C), EXACT, 'dTable');
    });
  });

  it('cosine similarity forward and backward (vocabulary split by rows), and top-k', async () => {
    await withLimit(async (e) => {
      const [M, N, C] = [3, 200, 16];
      const r = rng(12);
      const aData = r.normals(M * C);
      const bData = r.normals(N * C);
      const a = e.tensor(aData, [M, C], { requiresGrad: true });
      const b = e.tensor(bData, [N, C], { requiresGrad: true });
      above(b);
      const S = cosineSimilarity(a, b);
      const wantS = cosineSimilarityForwardRef(aData, bData, M, N, C);
      assertClose(await S.read(), wantS, DOT, 'S');
      const dSData = r.normals(M * N);
      e.backward(S, e.tensor(dSData, [M, N]));
      const [dA, dB] = cosineSimilarityBackwardRef(aData, bData, dSData, M, N, C);
      assertClose(await a.grad!.read(), dA, DOT, 'dA');
      assertClose(await b.grad!.read(), dB, DOT, 'dB');

      // Top-k over many rows of scores (rows split); distinct scores so the order is defined.
      const [R, K] = [20, 128];
      const scoresData = Float32Array.from({ length: R * K }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1);
      const scores = e.tensor(scoresData, [R, K]);
      above(scores);
      const got = await topK(scores, 5, [7, 9]);
      const want = topKRef(scoresData, R, K, 5, [7, 9]);
      expect([...got.indices]).toEqual([...want.indices]);
      assertClose(got.values, want.values, { atol: 0 }, 'top-k values');

      // Rows longer than one binding: column blocks, merged.
      const [R2, K2] = [2, 2500];
      const longData = Float32Array.from({ length: R2 * K2 }, (_, i) => ((Math.sin(i * 78.233) * 43758.5453) % 1) * 2);
      const long = e.tensor(longData, [R2, K2]);
      expect(K2 * 4).toBeGreaterThan(LIMIT);
      const excluded = [3, 1200, 2499];
      const gotLong = await topK(long, 6, excluded);
      const wantLong = topKRef(longData, R2, K2, 6, excluded);
      expect([...gotLong.indices]).toEqual([...wantLong.indices]);
      assertClose(gotLong.values, wantLong.values, { atol: 0 }, 'long-row top-k values');
    });
  });
});

describe('norms under a low binding limit match the references', () => {
  it.each([
    { B: 4, C: 8, G: 4, H: 8, silu: false, what: 'whole images per range' },
    { B: 2, C: 32, G: 8, H: 8, silu: true, what: 'group ranges of one image' },
  ])('group norm forward and backward ($what)', async ({ B, C, G, H, silu }) => {
    await withLimit(async (e) => {
      const S = H * H;
      const r = rng(13 + C);
      const xData = r.normals(B * C * S);
      const wData = r.normals(C);
      const bData = r.normals(C);
      const dYData = r.normals(B * C * S);
      const x = e.tensor(xData, [B, C, H, H], { requiresGrad: true });
      const w = e.tensor(wData, [C], { requiresGrad: true });
      const b = e.tensor(bData, [C], { requiresGrad: true });
      above(x);
      const y = groupNorm(x, G, w, b, 1e-5, { silu });
      const dims = { batch: B, channels: C, spatial: S, groups: G };
      assertClose(await y.read(), groupNormForwardRef(xData, dims, wData, bData, 1e-5, silu).y, NORM, 'y');
      e.backward(y, e.tensor(dYData, [B, C, H, H]));
      const want = groupNormBackwardRef(xData, dims, wData, bData, dYData, 1e-5, silu);
      assertClose(await x.grad!.read(), want.dX, NORM, 'dX');
      assertClose(await w.grad!.read(), want.dW, NORM, 'dW');
      assertClose(await b.grad!.read(), want.dB, NORM, 'dB');
    });
  });

  it('layer norm forward and backward (row ranges)', async () => {
    await withLimit(async (e) => {
      const [R, C] = [100, 24];
      const r = rng(14);
      const xData = r.normals(R * C);
      const wData = r.normals(C);
      const bData = r.normals(C);
      const dYData = r.normals(R * C);
      const x = e.tensor(xData, [4, 25, C], { requiresGrad: true });
      const w = e.tensor(wData, [C], { requiresGrad: true });
      const b = e.tensor(bData, [C], { requiresGrad: true });
      above(x);
      const y = layerNorm(x, w, b);
      assertClose(await y.read(), layerNormForwardRef(xData, C, wData, bData).y, NORM, 'y');
      e.backward(y, e.tensor(dYData, [4, 25, C]));
      const want = layerNormBackwardRef(xData, C, wData, dYData);
      assertClose(await x.grad!.read(), want.dX, NORM, 'dX');
      assertClose(await w.grad!.read(), want.dW, NORM, 'dW');
      assertClose(await b.grad!.read(), want.dB, NORM, 'dB');
    });
  });
});

describe('conv2d under a low binding limit matches the reference', () => {
  it.each([
    { B: 4, Cin: 8, Cout: 8, H: 8, stride: 1, what: 'image ranges' },
    { B: 2, Cin: 24, Cout: 20, H: 8, stride: 1, what: 'input and output channel ranges of one image' },
    { B: 2, Cin: 24, Cout: 20, H: 8, stride: 2, what: 'input channel ranges, stride 2' },
    { B: 2, Cin: 32, Cout: 16, H: 4, stride: 1, what: 'only the weight above the limit: channel ranges' },
    { B: 1, Cin: 32, Cout: 4, H: 8, stride: 1, what: 'input channel ranges only: the sum is the output' },
  ])('forward and backward ($what)', async ({ B, Cin, Cout, H, stride }) => {
    await withLimit(async (e) => {
      const opts = { padding: 1, stride };
      const g = conv2dGeometry([B, Cin, H, H], [Cout, Cin, 3, 3], opts);
      const { Ho, Wo } = convOutputSize(g);
      const r = rng(15 + Cin + stride);
      const xData = r.normals(B * Cin * H * H);
      const wData = r.normals(Cout * Cin * 9, 0.2);
      const bData = r.normals(Cout);
      const dYData = r.normals(B * Cout * Ho * Wo);
      const x = e.tensor(xData, [B, Cin, H, H], { requiresGrad: true });
      const w = e.tensor(wData, [Cout, Cin, 3, 3], { requiresGrad: true });
      const b = e.tensor(bData, [Cout], { requiresGrad: true });
      above(x.byteLength > w.byteLength ? x : w);
      const y = conv2d(x, w, b, opts);
      assertClose(await y.read(), conv2dForwardRef(g, xData, wData, bData), CONV, 'y');
      e.backward(y, e.tensor(dYData, [B, Cout, Ho, Wo]));
      const want = conv2dBackwardRef(g, xData, wData, dYData);
      assertClose(await x.grad!.read(), want.dX, CONV, 'dX');
      assertClose(await w.grad!.read(), want.dW, CONV, 'dW');
      assertClose(await b.grad!.read(), want.dBias, CONV, 'dBias');
    });
  });
});

// A frozen fp16 weight (the VAE's and UNet's convs as a pack holds them) when the split takes
// channel ranges: the weight's blocks are copied out in fp16. The 512 px VAE decode on a
// 128 MiB binding limit (WebGPU's default) takes this path in its 256-channel 512×512 convs.
describe('conv2d with a frozen fp16 weight under a low binding limit matches the reference', () => {
  const engines: [string, () => Promise<Engine>][] = [
    ['shader-f16', testEngine],
    ['packed pairs', testEngineWithoutF16],
  ];
  it.each(engines)('forward and dX over input and output channel ranges (%s)', async (name, make) => {
    const e = await make();
    if (name === 'shader-f16' && !e.f16) return; // the adapter lacks shader-f16: packed pairs cover it
    const [B, Cin, Cout, H] = [1, 24, 20, 8];
    const opts = { padding: 1 };
    const g = conv2dGeometry([B, Cin, H, H], [Cout, Cin, 3, 3], opts);
    const { Ho, Wo } = convOutputSize(g);
    const r = rng(77);
    const xData = r.normals(B * Cin * H * H);
    const wData = roundToF16(r.normals(Cout * Cin * 9, 0.2));
    const bData = r.normals(Cout);
    const dYData = r.normals(B * Cout * Ho * Wo);
    e.setBindingLimit(LIMIT);
    try {
      await e.scopeAsync(async () => {
        const x = e.tensor(xData, [B, Cin, H, H], { requiresGrad: true });
        const w = e.tensor(wData, [Cout, Cin, 3, 3], { dtype: 'f16' });
        const b = e.tensor(bData, [Cout]);
        above(x);
        const y = conv2d(x, w, b, opts);
        assertClose(await y.read(), conv2dForwardRef(g, xData, wData, bData), CONV, 'y');
        e.backward(y, e.tensor(dYData, [B, Cout, Ho, Wo]));
        assertClose(await x.grad!.read(), conv2dBackwardRef(g, xData, wData, dYData).dX, CONV, 'dX');
        x.grad!.dispose();
        x.grad = null;
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });
});

describe('element-wise and row-wise ops under a low binding limit match the references', () => {
  // Element-wise maps: fp32 transcendental functions against float64.
  const ELEMENT = { rtol: 1e-5, atol: 1e-6 };
  const n = 3000; // 12 000 bytes: three ranges at 4 KiB, the last one partial
  const unary: [
    string,
    (x: Tensor) => Tensor,
    (x: ArrayLike<number>) => Float64Array,
    (x: ArrayLike<number>, dY: ArrayLike<number>) => Float64Array,
  ][] = [
    ['silu', silu, siluForwardRef, siluBackwardRef],
    ['quick gelu', quickGelu, quickGeluForwardRef, quickGeluBackwardRef],
    [
      'gelu',
      (x) => gelu(x),
      (x) => Float64Array.from(x, (v) => geluRef(v)),
      (x, d) => Float64Array.from(x, (v, i) => geluGradRef(v) * d[i]),
    ],
  ];
  it.each(unary)('%s forward and backward (element ranges)', async (_name, op, fwdRef, bwdRef) => {
    await withLimit(async (e) => {
      const r = rng(16);
      const xData = r.normals(n, 2);
      const dYData = r.normals(n);
      const x = e.tensor(xData, [n], { requiresGrad: true });
      above(x);
      const y = op(x);
      assertClose(await y.read(), fwdRef(xData), ELEMENT, 'y');
      e.backward(y, e.tensor(dYData, [n]));
      assertClose(await x.grad!.read(), bwdRef(xData, dYData), ELEMENT, 'dX');
    });
  });

  it('geglu forward and backward (row ranges)', async () => {
    await withLimit(async (e) => {
      const [R, F] = [40, 16];
      const r = rng(17);
      const xData = r.normals(R * 2 * F);
      const dYData = r.normals(R * F);
      const x = e.tensor(xData, [R, 2 * F], { requiresGrad: true });
      above(x);
      const y = geglu(x);
      assertClose(await y.read(), gegluForwardRef(xData, F), ELEMENT, 'y');
      e.backward(y, e.tensor(dYData, [R, F]));
      assertClose(await x.grad!.read(), gegluBackwardRef(xData, dYData, F), ELEMENT, 'dX');
    });
  });

  it('upsample forward and backward (plane ranges)', async () => {
    await withLimit(async (e) => {
      const [B, C, H] = [2, 6, 8];
      const r = rng(18);
      const xData = r.normals(B * C * H * H);
      const dYData = r.normals(B * C * 4 * H * H);
      const x = e.tensor(xData, [B, C, H, H], { requiresGrad: true });
      const y = upsampleNearest2x(x);
      above(y);
      assertClose(await y.read(), upsampleNearest2xForwardRef(xData, B * C, H, H), EXACT, 'y');
      e.backward(y, e.tensor(dYData, [B, C, 2 * H, 2 * H]));
      assertClose(await x.grad!.read(), upsampleNearest2xBackwardRef(dYData, B * C, H, H), EXACT, 'dX');
    });
  });

  it('softmax forward and backward (row ranges)', async () => {
    await withLimit(async (e) => {
      const [R, N] = [50, 32];
      const r = rng(19);
      const xData = r.normals(R * N, 3);
      const dYData = r.normals(R * N);
      const x = e.tensor(xData, [R, N], { requiresGrad: true });
      above(x);
      const y = softmax(x);
      const yRef = softmaxForwardRef(xData, N);
      assertClose(await y.read(), yRef, ELEMENT, 'y');
      e.backward(y, e.tensor(dYData, [R, N]));
      assertClose(await x.grad!.read(), softmaxBackwardRef(yRef, dYData, N), ELEMENT, 'dX');
    });
  });

  it('mse loss forward and backward (element ranges, summed)', async () => {
    await withLimit(async (e) => {
      const r = rng(20);
      const pData = r.normals(n);
      const tData = r.normals(n);
      const p = e.tensor(pData, [3, n / 3], { requiresGrad: true });
      const t = e.tensor(tData, [3, n / 3], { requiresGrad: true });
      above(p);
      const L = mseLoss(p, t);
      assertClose(await L.read(), [mseForwardRef(pData, tData)], DOT, 'L');
      e.backward(L);
      const [dP, dT] = mseBackwardRef(pData, tData, 1);
      assertClose(await p.grad!.read(), dP, ELEMENT, 'dPred');
      assertClose(await t.grad!.read(), dT, ELEMENT, 'dTarget');
    });
  });
});

describe('linear and matmul under a low binding limit match the references', () => {
  // fp32 products summed over K ≤ 100 (and, for shared operands, over ranges).
  const GEMM = { rtol: 1e-4, atol: 1e-5 };

  it.each([
    { R: 100, inF: 12, outF: 20, what: 'row ranges' },
    { R: 10, inF: 40, outF: 48, what: 'weight above the limit: output feature ranges' },
  ])('linear forward and backward ($what)', async ({ R, inF, outF }) => {
    await withLimit(async (e) => {
      const r = rng(21);
      const xData = r.normals(R * inF);
      const wData = r.normals(outF * inF);
      const bData = r.normals(outF);
      const dYData = r.normals(R * outF);
      const x = e.tensor(xData, [2, R / 2, inF], { requiresGrad: true });
      const w = e.tensor(wData, [outF, inF], { requiresGrad: true });
      const b = e.tensor(bData, [outF], { requiresGrad: true });
      const y = linear(x, w, b);
      above(y.byteLength > w.byteLength ? y : w);
      expect(y.shape).toEqual([2, R / 2, outF]);
      assertClose(await y.read(), linearForwardRef(xData, wData, bData, inF, outF), GEMM, 'y');
      e.backward(y, e.tensor(dYData, [2, R / 2, outF]));
      const [dX, dW, dB] = linearBackwardRef(xData, wData, dYData, inF, outF);
      assertClose(await x.grad!.read(), dX, GEMM, 'dX');
      assertClose(await w.grad!.read(), dW, GEMM, 'dW');
      assertClose(await b.grad!.read(), dB, GEMM, 'dB');
    });
  });

  it.each([
    { aShape: [12, 8, 12], bShape: [12, 16], o: {}, what: 'shared b' },
    { aShape: [12, 8], bShape: [3, 4, 16, 12], o: { transA: true, transB: true }, what: 'shared a, transposed' },
  ])('matmul forward and backward over batch ranges ($what)', async ({ aShape, bShape, o }) => {
    await withLimit(async (e) => {
      const r = rng(22);
      const aData = r.normals(aShape.reduce((p, d) => p * d, 1));
      const bData = r.normals(bShape.reduce((p, d) => p * d, 1));
      const a = e.tensor(aData, aShape, { requiresGrad: true });
      const b = e.tensor(bData, bShape, { requiresGrad: true });
      const y = matmul(a, b, o);
      above(y);
      assertClose(await y.read(), matmulForwardRef(aData, aShape, bData, bShape, o), GEMM, 'y');
      const dYData = r.normals(y.size);
      e.backward(y, e.tensor(dYData, y.shape));
      const [dA, dB] = matmulBackwardRef(aData, aShape, bData, bShape, dYData, o);
      assertClose(await a.grad!.read(), dA, GEMM, 'dA');
      assertClose(await b.grad!.read(), dB, GEMM, 'dB');
    });
  });
});

describe('broadcasting binary ops under a low binding limit match the references', () => {
  // One fp32 operation per element (division included); broadcast gradients sum a few rows.
  const BINARY = { rtol: 1e-5, atol: 1e-6 };
  const ops = { add, sub, mul, div };
  it.each([
    { op: 'add' as const, aShape: [4, 8, 64], bShape: [4, 8, 64], what: 'same shapes: element ranges' },
    { op: 'mul' as const, aShape: [4, 6, 8, 8], bShape: [1, 6, 1, 1], what: 'per-channel broadcast: image ranges' },
    {
      op: 'div' as const,
      aShape: [2, 16, 8, 8],
      bShape: [2, 16, 1, 1],
      what: 'per-(image, channel) operand: plane ranges',
    },
    { op: 'sub' as const, aShape: [16], bShape: [8, 12, 16], what: 'broadcast first operand' },
  ])('$op forward and backward ($what)', async ({ op, aShape, bShape }) => {
    await withLimit(async (e) => {
      const r = rng(23);
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const aData = r.normals(size(aShape));
      // Divisors away from zero.
      const bData = op === 'div' ? r.uniforms(size(bShape), 0.5, 2) : r.normals(size(bShape));
      const a = e.tensor(aData, aShape, { requiresGrad: true });
      const b = e.tensor(bData, bShape, { requiresGrad: true });
      const y = ops[op](a, b);
      above(y);
      const want = binaryForwardRef(op, aData, aShape, bData, bShape);
      expect(y.shape).toEqual(want.shape);
      assertClose(await y.read(), want.y, BINARY, 'y');
      const dYData = r.normals(y.size);
      e.backward(y, e.tensor(dYData, y.shape));
      const [dA, dB] = binaryBackwardRef(op, aData, aShape, bData, bShape, dYData);
      assertClose(await a.grad!.read(), dA, BINARY, 'dA');
      assertClose(await b.grad!.read(), dB, BINARY, 'dB');
    });
  });

  it('scale (affine) forward and backward (element ranges)', async () => {
    await withLimit(async (e) => {
      const xData = rng(24).normals(3000);
      const x = e.tensor(xData, [3000], { requiresGrad: true });
      above(x);
      const y = scale(x, -1.5);
      assertClose(
        await y.read(),
        Float64Array.from(xData, (v) => -1.5 * v),
        EXACT,
        'y',
      );
      e.backward(y, e.full([3000], 2));
      assertClose(await x.grad!.read(), new Float64Array(3000).fill(-3), EXACT, 'dX');
    });
  });
});

describe('data movement and reductions under a low binding limit match the references', () => {
  // Sums of up to a few hundred fp32 values, split into partial sums.
  const SUM = { rtol: 1e-5, atol: 1e-5 };
  const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

  it.each([
    {
      shapes: [
        [2, 8, 8, 8],
        [2, 4, 8, 8],
      ],
      axis: 1,
      what: 'channels: a buffer copy per row',
    },
    {
      shapes: [
        [1200, 2],
        [1200, 1],
      ],
      axis: 1,
      what: 'many short rows: the kernel on row ranges',
    },
  ])('concat and slice forward and backward ($what)', async ({ shapes, axis }) => {
    await withLimit(async (e) => {
      const r = rng(25);
      const data = shapes.map((s) => r.normals(size(s)));
      const xs = shapes.map((s, i) => e.tensor(data[i], s, { requiresGrad: true }));
      const y = concat(xs, axis);
      above(y);
      assertClose(await y.read(), concatForwardRef(data, shapes, axis), EXACT, 'y');
      const dYData = r.normals(y.size);
      e.backward(y, e.tensor(dYData, y.shape));
      const want = concatBackwardRef(dYData, shapes, axis);
      for (let i = 0; i < xs.length; i++) assertClose(await xs[i].grad!.read(), want[i], EXACT, `dX${i}`);

      const yData = Float32Array.from(await y.read());
      const yy = e.tensor(yData, y.shape, { requiresGrad: true });
      const start = 1;
      const length = y.shape[axis] - 2;
      const s = slice(yy, axis, start, length);
      assertClose(await s.read(), sliceForwardRef(yData, y.shape, axis, start, length), EXACT, 'slice');
      const dSData = r.normals(s.size);
      e.backward(s, e.tensor(dSData, s.shape));
      assertClose(await yy.grad!.read(), sliceBackwardRef(dSData, y.shape, axis, start, length), EXACT, 'dSlice');
    });
  });

  it('transpose forward and backward (ranges of the leading axis)', async () => {
    await withLimit(async (e) => {
      const shape = [6, 16, 12];
      const perm = [0, 2, 1];
      const xData = rng(26).normals(size(shape));
      const x = e.tensor(xData, shape, { requiresGrad: true });
      above(x);
      const y = transpose(x, perm);
      assertClose(await y.read(), transposeForwardRef(xData, shape, perm), EXACT, 'y');
      const dYData = rng(27).normals(y.size);
      e.backward(y, e.tensor(dYData, y.shape));
      assertClose(await x.grad!.read(), transposeBackwardRef(dYData, shape, perm), EXACT, 'dX');
    });
  });

  it.each([
    { axes: [0], keepDims: false, what: 'leading axis summed' },
    { axes: [1, 2], keepDims: true, what: 'leading axis kept' },
  ])('sum and mean forward and backward ($what)', async ({ axes, keepDims }) => {
    await withLimit(async (e) => {
      const shape = [8, 10, 16];
      const xData = rng(28).normals(size(shape));
      const x = e.tensor(xData, shape, { requiresGrad: true });
      above(x);
      const y = sum(x, axes, keepDims);
      const want = sumForwardRef(xData, shape, axes, keepDims);
      expect(y.shape).toEqual(want.shape);
      assertClose(await y.read(), want.y, SUM, 'sum');
      const dYData = rng(29).normals(y.size);
      e.backward(y, e.tensor(dYData, y.shape));
      assertClose(await x.grad!.read(), sumBackwardRef(dYData, shape, axes), EXACT, 'dX');
      const m = mean(x, axes, keepDims);
      assertClose(await m.read(), meanForwardRef(xData, shape, axes, keepDims).y, SUM, 'mean');
    });
  });
});
