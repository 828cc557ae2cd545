// transformers CLIPVisionModelWithProjection: patch tokens + class token → encoder. The
// spatial tokens of the last layer feed the tuning encoder; the projected class token is
// the image embedding used for CLIP similarities.
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import type { ClipVisionConfig } from './clip-config.ts';
import { clipEncoder } from './clip-encoder.ts';

export interface ClipVisionOutput<T> {
  /** (B, 1 + (S/P)², C): encoder output, not post-normed (as transformers returns it). */
  lastHiddenState: T;
  /** (B, projection_dim) */
  imageEmbeds: T;
}

/** pixels: (B, 3, S, S), CLIP-normalised */
export function clipVision<T>(ops: TensorOps<T>, params: Params<T>, c: ClipVisionConfig, pixels: T): ClipVisionOutput<T> {
  const p = params.sub('vision_model');
  const C = c.hidden_size;
  const P = c.patch_size;
  const grid = c.image_size / P;
  const [B] = ops.shape(pixels);
  // 1. patches → tokens, class token in front, position embeddings
  let patches = ops.conv2d(pixels, p.get('embeddings.patch_embedding.weight', [C, c.num_channels, P, P]), null, { stride: P });
  patches = ops.transpose(ops.reshape(patches, [B, C, grid * grid]), [0, 2, 1]);
  const cls = ops.broadcastTo(ops.reshape(p.get('embeddings.class_embedding', [C]), [1, 1, C]), [B, 1, C]);
  const pos = ops.reshape(p.get('embeddings.position_embedding.weight', [grid * grid + 1, C]), [1, grid * grid + 1, C]);
  let x = ops.add(ops.concat([cls, patches], 1), pos);
  // 2. pre-norm (sic: "pre_layrnorm" in transformers), encoder
  x = ops.layerNorm(x, p.get('pre_layrnorm.weight', [C]), p.get('pre_layrnorm.bias', [C]), c.layer_norm_eps);
  const lastHiddenState = clipEncoder(ops, p.sub('encoder'), c, x, false, true);
  // 3. class token → post-norm → projection
  const pooled = ops.layerNorm(
    ops.reshape(ops.slice(lastHiddenState, 1, 0, 1), [B, C]),
    p.get('post_layernorm.weight', [C]),
    p.get('post_layernorm.bias', [C]),
    c.layer_norm_eps,
  );
  const imageEmbeds = ops.linear(pooled, params.get('visual_projection.weight', [c.projection_dim ?? C, C]));
  return { lastHiddenState, imageEmbeds };
}
