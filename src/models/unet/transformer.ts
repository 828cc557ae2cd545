// diffusers Transformer2DModel with BasicTransformerBlocks (self-attention, cross-attention,
// GEGLU feed-forward), LoRA on the attention projections, and the paper's dual path (Eq. 3):
//   out = α·B(f, C, ΔW) + (1 − α)·B(f, C_h, ∅)
// applied at every BasicTransformerBlock.
import { loraLinear, type LoraSet } from '../lora.ts';
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';

export interface Conditioning<T> {
  /** C: the prompt encoded with v* — (B, 77, cross_attention_dim). */
  context: T;
  /** LoRA offsets ΔW (null: vanilla weights). */
  lora: LoraSet<T> | null;
  /**
   * Dual path: C_h (the prompt with the hard token v_h) and the blend α — a number, or a
   * tensor of shape (1) when α is an input of an exported graph.
   */
  dual?: { hardContext: T; alpha: number | T } | null;
}

export interface TransformerOptions {
  channels: number;
  heads: number;
  crossAttentionDim: number;
  groups: number;
  useLinearProjection: boolean;
}

// x: (B, N, C), context: (B, M, Cc) or null for self-attention → (B, N, C)
function attention<T>(
  ops: TensorOps<T>,
  p: Params<T>,
  x: T,
  context: T | null,
  channels: number,
  contextChannels: number,
  heads: number,
  lora: LoraSet<T> | null,
): T {
  const kv = context ?? x;
  const q = loraLinear(ops, x, p, 'to_q', [channels, channels], false, lora);
  const k = loraLinear(ops, kv, p, 'to_k', [channels, contextChannels], false, lora);
  const v = loraLinear(ops, kv, p, 'to_v', [channels, contextChannels], false, lora);
  const o = ops.attention(q, k, v, heads);
  return loraLinear(ops, o, p, 'to_out.0', [channels, channels], true, lora);
}

// x: (B, N, C) → (B, N, C)
function basicTransformerBlock<T>(
  ops: TensorOps<T>,
  p: Params<T>,
  o: TransformerOptions,
  x: T,
  context: T,
  lora: LoraSet<T> | null,
): T {
  const C = o.channels;
  const ln = (name: string, h: T) => ops.layerNorm(h, p.get(`${name}.weight`, [C]), p.get(`${name}.bias`, [C]), 1e-5);
  // 1. self-attention
  x = ops.add(x, attention(ops, p.sub('attn1'), ln('norm1', x), null, C, C, o.heads, lora));
  // 2. cross-attention on the prompt
  x = ops.add(x, attention(ops, p.sub('attn2'), ln('norm2', x), context, C, o.crossAttentionDim, o.heads, lora));
  // 3. GEGLU feed-forward
  const ff = p.sub('ff.net');
  let h = ops.linear(ln('norm3', x), ff.get('0.proj.weight', [8 * C, C]), ff.get('0.proj.bias', [8 * C]));
  h = ops.linear(ops.geglu(h), ff.get('2.weight', [C, 4 * C]), ff.get('2.bias', [C]));
  return ops.add(x, h);
}

// x: (B, C, H, W) → (B, C, H, W)
export function transformer2d<T>(ops: TensorOps<T>, p: Params<T>, o: TransformerOptions, x: T, cond: Conditioning<T>): T {
  const C = o.channels;
  const [B, , H, W] = ops.shape(x);
  // 1. group norm, project in, flatten pixels into a sequence
  let h = ops.groupNorm(x, o.groups, p.get('norm.weight', [C]), p.get('norm.bias', [C]), 1e-6);
  const toSeq = (t: T) => ops.reshape(ops.transpose(t, [0, 2, 3, 1]), [B, H * W, C]);
  const toImage = (t: T) => ops.transpose(ops.reshape(t, [B, H, W, C]), [0, 3, 1, 2]);
  if (o.useLinearProjection) h = ops.linear(toSeq(h), p.get('proj_in.weight', [C, C]), p.get('proj_in.bias', [C]));
  else h = toSeq(ops.conv2d(h, p.get('proj_in.weight', [C, C, 1, 1]), p.get('proj_in.bias', [C])));
  // 2. the transformer block, on one path or blended from two (Eq. 3)
  const block = p.sub('transformer_blocks.0');
  if (cond.dual && typeof cond.dual.alpha !== 'number') {
    // α as a tensor: prior + α·(adapted − prior)
    const adapted = basicTransformerBlock(ops, block, o, h, cond.context, cond.lora);
    const prior = basicTransformerBlock(ops, block, o, h, cond.dual.hardContext, null);
    h = ops.add(prior, ops.mul(ops.sub(adapted, prior), cond.dual.alpha));
  } else if (cond.dual) {
    // α = 1 and α = 0 need only one path; skipping the other saves half the work.
    const { alpha, hardContext } = cond.dual;
    const adapted = alpha !== 0 ? basicTransformerBlock(ops, block, o, h, cond.context, cond.lora) : null;
    const prior = alpha !== 1 ? basicTransformerBlock(ops, block, o, h, hardContext, null) : null;
    if (adapted && prior) h = ops.add(ops.scale(adapted, alpha as number), ops.scale(prior, 1 - (alpha as number)));
    else h = (adapted ?? prior)!;
  } else {
    h = basicTransformerBlock(ops, block, o, h, cond.context, cond.lora);
  }
  // 3. project out, back to an image, residual
  if (o.useLinearProjection) h = toImage(ops.linear(h, p.get('proj_out.weight', [C, C]), p.get('proj_out.bias', [C])));
  else h = ops.conv2d(toImage(h), p.get('proj_out.weight', [C, C, 1, 1]), p.get('proj_out.bias', [C]));
  return ops.add(h, x);
}
