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
  const { values, indices } = topKForward(scores.engine, scores, k, exclude, segment);
  try {
    const [v, bits] = await Promise.all([values.read(), indices.read()]);
    return { values: v, indices: new Int32Array(bits.buffer, bits.byteOffset, bits.length) };
  } finally {
    values.dispose();
    indices.dispose();
  }
}
