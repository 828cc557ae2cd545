// N(v*): the vocabulary embeddings nearest to v* by cosine similarity, on the GPU, with the
// special tokens excluded (paper §3.2). The first is the hard token v_h of the dual path.
import type { Tensor } from '../engine/tensor.ts';
import { cosineSimilarity, topK } from '../kernels/cosine-top-k/cosine-top-k.ts';
import { END_OF_TEXT, START_OF_TEXT } from './clip-tokenizer.ts';
import type { PackRuntime } from './pack-runtime.ts';

export interface NearestTokens {
  ids: number[];
  similarities: number[];
  words: string[];
}

/** vStar: (C) or (1, C) */
export async function nearestTokens(rt: PackRuntime, vStar: Tensor, k: number): Promise<NearestTokens> {
  const { values, indices } = await rt.engine.scopeAsync(async () => {
    const scores = rt.engine.noGrad(() => cosineSimilarity(vStar.reshape([1, rt.tokenDim]), rt.tokenTableTensor()));
    return topK(scores, k, [START_OF_TEXT, END_OF_TEXT]);
  });
  const ids = [...indices];
  return { ids, similarities: [...values], words: ids.map((id) => rt.tokenizer.decodeToken(id)) };
}
