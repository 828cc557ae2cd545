// transformers CLIPTextModel, taking token embeddings (not ids) so that a learned v* can be
// spliced in for the placeholder; `clipTokenEmbeddings` gives the ordinary embeddings.
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import type { ClipTextConfig } from './clip-config.ts';
import { clipEncoder } from './clip-encoder.ts';

/** ids: (B, N) → token embeddings (B, N, C) (before position embeddings). */
export function clipTokenEmbeddings<T, Ids>(ops: TensorOps<T, Ids>, params: Params<T>, c: ClipTextConfig, ids: Ids): T {
  return ops.embedding(ids, params.get('text_model.embeddings.token_embedding.weight', [c.vocab_size, c.hidden_size]));
}

/** inputsEmbeds: (B, N, C), N ≤ max_position_embeddings → last_hidden_state (B, N, C) */
export function clipText<T, Ids>(ops: TensorOps<T, Ids>, params: Params<T>, c: ClipTextConfig, inputsEmbeds: T, positionIds: Ids): T {
  const p = params.sub('text_model');
  const pos = ops.embedding(positionIds, p.get('embeddings.position_embedding.weight', [c.max_position_embeddings, c.hidden_size]));
  const x = clipEncoder(ops, p.sub('encoder'), c, ops.add(inputsEmbeds, pos), true);
  const C = c.hidden_size;
  return ops.layerNorm(x, p.get('final_layer_norm.weight', [C]), p.get('final_layer_norm.bias', [C]), c.layer_norm_eps);
}
