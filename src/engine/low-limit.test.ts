// Every op that splits its work to respect the storage binding limit, run with an
// artificially low limit (LIMIT bytes) so that small shapes take the split paths real model
// sizes take (the 49408×768 CLIP table, 512 px VAE activations), forward and backward,
// against the float64 CPU references. Each case asserts that its largest tensor is indeed
// above the limit: the engine throws BindingLimitError on any binding that is not split, so
// passing means the op split and still computed the right numbers.
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { rng } from '../../test/random.ts';
import {
  cosineSimilarityBackwardRef,
  cosineSimilarityForwardRef,
  topKRef,
} from '../kernels/cosine-top-k/cosine-top-k-reference.ts';
import { cosineSimilarity, topK } from '../kernels/cosine-top-k/cosine-top-k.ts';
import { conv2dGeometry } from '../kernels/conv2d/conv2d-kernels.ts';
import { conv2dBackwardRef, conv2dForwardRef, convOutputSize } from '../kernels/conv2d/conv2d-reference.ts';
import { conv2d } from '../kernels/conv2d/conv2d.ts';
import { embeddingBackwardRef, embeddingForwardRef } from '../kernels/embedding/embedding-reference.ts';
import { embedding } from '../kernels/embedding/embedding.ts';
import { groupNormBackwardRef, groupNormForwardRef } from '../kernels/group-norm/group-norm-reference.ts';
import { groupNorm } from '../kernels/group-norm/group-norm.ts';
import { layerNormBackwardRef, layerNormForwardRef } from '../kernels/layer-norm/layer-norm-reference.ts';
import { layerNorm } from '../kernels/layer-norm/layer-norm.ts';
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
      above(x);
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
