// Embedding lookup as a differentiable op (w.r.t. the table; ids are data): gather on the
// GPU forward, scatter-add of dY rows into a dense zero dTable backward.
import type { Tensor } from '../../engine/tensor.ts';
import { embeddingBackward, embeddingForward } from './embedding-kernels.ts';

// ids: (…idsShape) (default (P)), table: (V, C) → (…idsShape, C)
export function embedding(ids: Int32Array | readonly number[], table: Tensor, idsShape?: readonly number[]): Tensor {
  const e = table.engine;
  const y = embeddingForward(e, ids, table, idsShape ?? [ids.length]); // validates the ids
  // A copy: the caller may reuse its array before backward runs.
  const saved = Int32Array.from(ids);
  e.record('embedding', [table], y, [], (dY) => [embeddingBackward(e, saved, dY, table.shape[0])]);
  return y;
}
