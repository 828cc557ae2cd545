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
  /** Inference only: bytes one feed-forward chunk's projection may take (default FEED_FORWARD_CHUNK_BYTES). */
  feedForwardChunkBytes?: number;
}

/**
 * Bytes one feed-forward chunk's GEGLU projection may take at inference (f32). At 512 px the
 * 320-wide blocks see 2 × 4096 tokens: the whole projection (8C wide) is 80 MiB and its GEGLU
 * 40 MiB; in 8 MiB chunks (10 of ≤ 448 tokens there) the feed-forward is no longer the UNet's
 * largest live set (bench/unet-memory.ts: the peak moves to a resnet of the last up block).
 */
export const FEED_FORWARD_CHUNK_BYTES = 8 * 2 ** 20;

// x: (B, N, C), context: (B, M, Cc) or null for self-attention → (B, N, C)
// Without gradients q, k, v and the attention output go back to the pool once consumed.
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
  for (const t of [q, k, v]) ops.release?.(t);
  return consume(ops, o, (t) => loraLinear(ops, t, p, 'to_out.0', [channels, channels], true, lora));
}

/**
 * f(x), then x's memory back to the pool (ops.release: without gradients only) — for an
 * intermediate this file created and needs no more. Reshapes are views with handles of their
 * own: each handle is released (the storage goes when the last one does).
 */
function consume<T>(ops: TensorOps<T>, x: T, f: (x: T) => T): T {
  const y = f(x);
  ops.release?.(x);
  return y;
}

// GEGLU feed-forward: x (B, N, C) → (B, N, C). Without gradients it runs over chunks of
// tokens (as diffusers' enable_forward_chunking): every token's numbers are the same — the
// layers act on each token alone — but only one chunk's 8C-wide projection is live at a time.
// With gradients it stays one pass, so the tape and the weight gradients' sums are unchanged.
function feedForward<T>(ops: TensorOps<T>, ff: Params<T>, x: T, C: number, chunkBytes = FEED_FORWARD_CHUNK_BYTES): T {
  const run = (t: T) => {
    const h = ops.linear(t, ff.get('0.proj.weight', [8 * C, C]), ff.get('0.proj.bias', [8 * C]));
    const g = consume(ops, h, (u) => ops.geglu(u));
    return consume(ops, g, (u) => ops.linear(u, ff.get('2.weight', [C, 4 * C]), ff.get('2.bias', [C])));
  };
  const [B, N] = ops.shape(x);
  const chunks = Math.ceil((B * N * 8 * C * 4) / chunkBytes);
  if (chunks <= 1 || !ops.release || !ops.isGradEnabled || ops.isGradEnabled()) return run(x);
  // chunks of equal length, the last one shorter; a multiple of 64 tokens (the matmul
  // tiles') where they are that long
  let step = Math.ceil(N / chunks);
  if (step > 64) step = Math.ceil(step / 64) * 64;
  const parts: T[] = [];
  for (let start = 0; start < N; start += step) {
    parts.push(consume(ops, ops.slice(x, 1, start, Math.min(step, N - start)), run));
  }
  const out = ops.concat(parts, 1);
  for (const t of parts) ops.release(t);
  return out;
}

// x: (B, N, C) → (B, N, C); x is the caller's (the dual path runs two blocks on one x).
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
  const free = (t: T) => ops.release?.(t);
  // 1. self-attention
  const a1 = consume(ops, ln('norm1', x), (n) => attention(ops, p.sub('attn1'), n, null, C, C, o.heads, lora));
  const x1 = consume(ops, a1, (a) => ops.add(x, a));
  // 2. cross-attention on the prompt
  const a2 = consume(ops, ln('norm2', x1), (n) => attention(ops, p.sub('attn2'), n, context, C, o.crossAttentionDim, o.heads, lora));
  const x2 = ops.add(x1, a2);
  free(x1);
  free(a2);
  // 3. GEGLU feed-forward
  const f = consume(ops, ln('norm3', x2), (n) => feedForward(ops, p.sub('ff.net'), n, C, o.feedForwardChunkBytes));
  const out = ops.add(x2, f);
  free(x2);
  free(f);
  return out;
}

// x: (B, C, H, W) → (B, C, H, W)
export function transformer2d<T>(ops: TensorOps<T>, p: Params<T>, o: TransformerOptions, x: T, cond: Conditioning<T>): T {
  const C = o.channels;
  const [B, , H, W] = ops.shape(x);
  // Every intermediate below is this function's own and is released once consumed (not x).
  // 1. group norm, project in, flatten pixels into a sequence
  let h = ops.groupNorm(x, o.groups, p.get('norm.weight', [C]), p.get('norm.bias', [C]), 1e-6);
  const toSeq = (t: T) => consume(ops, consume(ops, t, (u) => ops.transpose(u, [0, 2, 3, 1])), (u) => ops.reshape(u, [B, H * W, C]));
  const toImage = (t: T) => consume(ops, consume(ops, t, (u) => ops.reshape(u, [B, H, W, C])), (u) => ops.transpose(u, [0, 3, 1, 2]));
  if (o.useLinearProjection) h = consume(ops, toSeq(h), (u) => ops.linear(u, p.get('proj_in.weight', [C, C]), p.get('proj_in.bias', [C])));
  else h = toSeq(consume(ops, h, (u) => ops.conv2d(u, p.get('proj_in.weight', [C, C, 1, 1]), p.get('proj_in.bias', [C]))));
  // 2. the transformer block, on one path or blended from two (Eq. 3)
  const block = p.sub('transformer_blocks.0');
  const free = (t: T) => ops.release?.(t);
  if (cond.dual && typeof cond.dual.alpha !== 'number') {
    // α as a tensor: prior + α·(adapted − prior)
    const adapted = basicTransformerBlock(ops, block, o, h, cond.context, cond.lora);
    const prior = basicTransformerBlock(ops, block, o, h, cond.dual.hardContext, null);
    free(h);
    const d = ops.sub(adapted, prior);
    free(adapted);
    const alpha = cond.dual.alpha;
    const m = consume(ops, d, (t) => ops.mul(t, alpha));
    h = ops.add(prior, m);
    free(prior);
    free(m);
  } else if (cond.dual) {
    // α = 1 and α = 0 need only one path; skipping the other saves half the work.
    const { alpha, hardContext } = cond.dual;
    const adapted = alpha !== 0 ? basicTransformerBlock(ops, block, o, h, cond.context, cond.lora) : null;
    const prior = alpha !== 1 ? basicTransformerBlock(ops, block, o, h, hardContext, null) : null;
    free(h);
    if (adapted && prior) {
      const a = consume(ops, adapted, (t) => ops.scale(t, alpha as number));
      const b = consume(ops, prior, (t) => ops.scale(t, 1 - (alpha as number)));
      h = ops.add(a, b);
      free(a);
      free(b);
    } else h = (adapted ?? prior)!;
  } else {
    h = consume(ops, h, (t) => basicTransformerBlock(ops, block, o, t, cond.context, cond.lora));
  }
  // 3. project out, back to an image, residual
  if (o.useLinearProjection) h = toImage(consume(ops, h, (t) => ops.linear(t, p.get('proj_out.weight', [C, C]), p.get('proj_out.bias', [C]))));
  else h = consume(ops, toImage(h), (t) => ops.conv2d(t, p.get('proj_out.weight', [C, C, 1, 1]), p.get('proj_out.bias', [C])));
  return consume(ops, h, (t) => ops.add(t, x));
}
