// transformers CLIPTextConfig / CLIPVisionConfig, read from config.json verbatim (same field
// names; fields this code does not read are kept, so a pack carries the file as it was).
// These are the only definitions: the pack manifest refers to them, and checks them with the
// functions below.
import { key, NONNEG_INT, R, type Checker } from '../../domain/json-checker.ts';
import { MANIFEST_LIMITS as L, VOCAB_SIZE } from '../../domain/limits.ts';

export interface ClipEncoderConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  layer_norm_eps: number;
  hidden_act: 'quick_gelu' | 'gelu';
  projection_dim?: number;
  [field: string]: unknown;
}

/** transformers `CLIPTextConfig` (text_encoder/config.json). */
export interface ClipTextConfig extends ClipEncoderConfig {
  vocab_size: number;
  max_position_embeddings: number;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number;
}

/** transformers `CLIPVisionConfig` (image_encoder/config.json of CLIPVisionModelWithProjection). */
export interface ClipVisionConfig extends ClipEncoderConfig {
  image_size: number;
  patch_size: number;
  num_channels: number;
  projection_dim: number;
}

/** The one check of a text encoder config at JSON path `p`; returns what other configs must agree with. */
export function checkClipTextConfig(c: Checker, v: unknown, p: string): { hidden?: number; maxPositions?: number } {
  const t = c.object(v, p);
  if (!t) return {};
  const vocab = c.num(t, 'vocab_size', p, R(VOCAB_SIZE));
  const hidden = c.num(t, 'hidden_size', p, R(L.width));
  c.num(t, 'intermediate_size', p, R(L.mlpWidth));
  c.num(t, 'num_hidden_layers', p, R(L.layers));
  const heads = c.num(t, 'num_attention_heads', p, R(L.heads));
  const maxPositions = c.num(t, 'max_position_embeddings', p, R(L.maxPositions));
  c.str(t, 'hidden_act', p, { oneOf: ['quick_gelu', 'gelu'] });
  c.num(t, 'layer_norm_eps', p, R(L.eps));
  c.num(t, 'projection_dim', p, R(L.width, true));
  for (const id of ['bos_token_id', 'eos_token_id', 'pad_token_id']) c.num(t, id, p, { ...NONNEG_INT, max: (vocab ?? VOCAB_SIZE.max) - 1, optional: true });
  if (hidden !== undefined && heads !== undefined && hidden % heads !== 0) {
    c.add(key(p, 'num_attention_heads'), `hidden_size ${hidden} is not divisible by ${heads} heads`);
  }
  return { hidden, maxPositions };
}

/** The one check of an image encoder config at JSON path `p`. */
export function checkClipVisionConfig(c: Checker, json: unknown, p: string): void {
  const v = c.object(json, p);
  if (!v) return;
  const hidden = c.num(v, 'hidden_size', p, R(L.width));
  c.num(v, 'intermediate_size', p, R(L.mlpWidth));
  c.num(v, 'num_hidden_layers', p, R(L.layers));
  const heads = c.num(v, 'num_attention_heads', p, R(L.heads));
  c.num(v, 'num_channels', p, R(L.imageChannels));
  const image = c.num(v, 'image_size', p, R(L.visionImageSize));
  const patch = c.num(v, 'patch_size', p, R(L.patchSize));
  c.num(v, 'projection_dim', p, R(L.width));
  c.str(v, 'hidden_act', p, { oneOf: ['quick_gelu', 'gelu'] });
  c.num(v, 'layer_norm_eps', p, R(L.eps));
  if (hidden !== undefined && heads !== undefined && hidden % heads !== 0) {
    c.add(key(p, 'num_attention_heads'), `hidden_size ${hidden} is not divisible by ${heads} heads`);
  }
  if (image !== undefined && patch !== undefined && image % patch !== 0) {
    c.add(key(p, 'patch_size'), `image_size ${image} is not a multiple of patch_size ${patch}`);
  }
}
