// Cosine similarity as a differentiable op (w.r.t. both sides), and top-k selection over
// its rows ("the k vocabulary embeddings nearest to v*"). Top-k is not differentiable — it
// selects indices — so it has no backward and records nothing on the tape.
import type { Tensor } from '../../engine/tensor.ts';
import {
  cosineShapes,
  cosineSimilarityBackward,
  cosineSimilarityForward,
  rowNorms,
  topKForward,
  TOPK_SEGMENT,
} from './cosine-top-k-kernels.ts';

// a: (M, C), b: (N, C) → S: (M, N), S_ij = a_i·b_j / (max(‖a_i‖, 1e-8)·max(‖b_j‖, 1e-8))
export function cosineSimilarity(a: Tensor, b: Tensor): Tensor {
  cosineShapes(a, b);
  const e = a.engine;
  const na = rowNorms(e, a);
  const nb = rowNorms(e, b);
  const S = cosineSimilarityForward(e, a, b, na, nb);
  e.record('cosine_similarity', [a, b], S, [a, b, na, nb, S], (dS) =>
    cosineSimilarityBackward(e, a, b, na, nb, S, dS, [a.requiresGrad, b.requiresGrad]),
  );
  // The tape holds the norms' storage when it recorded a node; otherwise they are done.
  na.dispose();
  nb.dispose();
  return S;
}

export interface TopKResult {
  /** (M·k) scores, row-major, each row best first. */
  values: Float32Array;
  /** (M·k) column indices matching `values`. */
  indices: Int32Array;
}

/**
 * The k ≤ 512 largest scores of each row of scores: (M, N) and their column indices, best
 * first; equal scores go to the lower index; `exclude`d columns are never returned (it is
 * an error when fewer than k columns remain). NaN scores have no defined order.
 */
export async function topK(
  scores: Tensor,
  k: number,
  exclude: ReadonlySet<number> | readonly number[] = [],
  segment = TOPK_SEGMENT,
): Promise<TopKResult> {
  const e = scores.engine;
  if (scores.rank === 2 && scores.shape[1] * 4 > e.maxBindingBytes) return topKByColumns(scores, k, exclude, segment);
  const { values, indices } = topKForward(scores.engine, scores, k, exclude, segment);
  try {
    const [v, bits] = await Promise.all([values.read(), indices.read()]);
    return { values: v, indices: new Int32Array(bits.buffer, bits.byteOffset, bits.length) };
  } finally {
    values.dispose();
    indices.dispose();
  }
}

/**
 * Top-k of rows too long for one binding (not the real vocabulary, whose rows are 197 KB,
 * but a limit lowered far enough): top-k of column blocks, copied out, merged on the CPU in
 * the same order (value descending, then index ascending).
 */
async function topKByColumns(
  scores: Tensor,
  k: number,
  exclude: ReadonlySet<number> | readonly number[],
  segment: number,
): Promise<TopKResult> {
  const e = scores.engine;
  const [M, N] = scores.shape;
  const excluded = new Set(exclude);
  for (const j of excluded) {
    if (!Number.isInteger(j) || j < 0 || j >= N) throw new RangeError(`top-k: excluded id ${j} is not in [0, ${N})`);
  }
  if (N - excluded.size < k)
    throw new RangeError(`top-k: k = ${k} but only ${N - excluded.size} of ${N} columns are not excluded`);
  const width = Math.max(1, Math.floor(e.maxBindingBytes / (4 * M)));
  const candidates: { v: number; i: number }[][] = Array.from({ length: M }, () => []);
  for (let n0 = 0; n0 < N; n0 += width) {
    const w = Math.min(width, N - n0);
    const local = [...excluded].filter((j) => j >= n0 && j < n0 + w).map((j) => j - n0);
    const kk = Math.min(k, w - local.length);
    if (kk < 1) continue;
    const block = e.empty([M, w]);
    try {
      for (let m = 0; m < M; m++) e.copyInto(block, m * w, scores, m * N + n0, w);
      const r = await topK(block, kk, local, Math.max(segment, 2 ** Math.ceil(Math.log2(2 * kk))));
      for (let m = 0; m < M; m++) {
        for (let j = 0; j < kk; j++) candidates[m].push({ v: r.values[m * kk + j], i: r.indices[m * kk + j] + n0 });
      }
    } finally {
      block.dispose();
    }
  }
  const values = new Float32Array(M * k);
  const indices = new Int32Array(M * k);
  candidates.forEach((list, m) => {
    list.sort((a, b) => (a.v !== b.v ? b.v - a.v : a.i - b.i));
    for (let j = 0; j < k; j++) {
      values[m * k + j] = list[j].v;
      indices[m * k + j] = list[j].i;
    }
  });
  return { values, indices };
}
