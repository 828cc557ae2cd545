// The tuning encoder (paper §3.1, App. A): CLIP-vision and UNet-encoder feature maps → a
// shared convolutional trunk → two heads:
//   token embedder  → v*            (B, token_dim)
//   hypernetwork    → A_i, B_i      per LoRA target i, (B, r, in_i) and (B, out_i, r)
// The layers predicting B are zero-initialised, so ΔW = scale·B·A starts at 0 and the first
// forward equals the vanilla UNet. Per-target features come from one shared layer applied
// to h + e_i (a learned embedding of target i); A/B heads are shared by targets of equal width.
import type { LoraPair, LoraSet } from '../lora.ts';
import type { Params } from '../params.ts';
import type { TensorOps } from '../tensor-ops.ts';
import type { LoraTarget, TuningEncoderConfig } from './tuning-encoder-config.ts';

export interface TuningEncoderOutput<T> {
  /** v*: (B, token_dim) */
  embedding: T;
  lora: LoraSet<T>;
}

// clipTokens: (B, 1 + g², Cv) (CLIP last hidden state), unetFeatures: (B, Cu, gu, gu)
export function tuningEncoder<T>(
  ops: TensorOps<T>,
  p: Params<T>,
  c: TuningEncoderConfig,
  targets: readonly LoraTarget[],
  clipTokens: T,
  unetFeatures: T,
): TuningEncoderOutput<T> {
  const D = c.width;
  const [B] = ops.shape(clipTokens);
  const g = c.clip_grid;
  // 1. CLIP spatial tokens (class token dropped) as an image; patchify down to the UNet grid
  const clipMap = ops.reshape(ops.transpose(ops.slice(clipTokens, 1, 1, g * g), [0, 2, 1]), [B, c.clip_channels, g, g]);
  const s = g / c.unet_grid;
  if (!Number.isInteger(s) || s < 1) throw new Error(`tuning encoder: clip grid ${g} is not a multiple of unet grid ${c.unet_grid}`);
  const a = ops.conv2d(clipMap, p.get('clip_proj.weight', [D, c.clip_channels, s, s]), p.get('clip_proj.bias', [D]), { stride: s });
  const u = ops.conv2d(unetFeatures, p.get('unet_proj.weight', [D, c.unet_channels, 1, 1]), p.get('unet_proj.bias', [D]));
  // 2. trunk: fuse, residual conv blocks, pool to one vector per image
  let x = ops.conv2d(ops.concat([a, u], 1), p.get('trunk.conv_in.weight', [D, 2 * D, 3, 3]), p.get('trunk.conv_in.bias', [D]), { padding: 1 });
  for (let i = 0; i < c.trunk_blocks; i++) {
    const b = p.sub(`trunk.blocks.${i}`);
    let h = ops.groupNorm(x, c.groups, b.get('norm.weight', [D]), b.get('norm.bias', [D]), 1e-5, { silu: true });
    h = ops.conv2d(h, b.get('conv.weight', [D, D, 3, 3]), b.get('conv.bias', [D]), { padding: 1 });
    x = ops.add(x, h);
  }
  x = ops.groupNorm(x, c.groups, p.get('trunk.norm_out.weight', [D]), p.get('trunk.norm_out.bias', [D]), 1e-5, { silu: true });
  const h = ops.mean(x, [2, 3]); // (B, D)
  // 3. token embedder → v*
  const t = p.sub('token_head');
  const embedding = ops.linear(
    ops.silu(ops.linear(h, t.get('0.weight', [D, D]), t.get('0.bias', [D]))),
    t.get('2.weight', [c.token_dim, D]),
    t.get('2.bias', [c.token_dim]),
  );
  // 4. hypernetwork → A_i, B_i for every target
  const hy = p.sub('hyper');
  const L = targets.length;
  const r = c.lora_rank;
  const perTarget = ops.add(ops.reshape(h, [B, 1, D]), ops.reshape(hy.get('target_embeddings', [L, D]), [1, L, D]));
  const z = ops.silu(ops.linear(perTarget, hy.get('shared.weight', [D, D]), hy.get('shared.bias', [D]))); // (B, L, D)
  const layers = new Map<string, LoraPair<T>>();
  targets.forEach((target, i) => {
    const zi = ops.reshape(ops.slice(z, 1, i, 1), [B, D]);
    const aHead = hy.sub(`a_heads.${target.in}`);
    const bHead = hy.sub(`b_heads.${target.out}`);
    const A = ops.linear(zi, aHead.get('weight', [r * target.in, D]), aHead.get('bias', [r * target.in]));
    const Bw = ops.linear(zi, bHead.get('weight', [target.out * r, D]), bHead.get('bias', [target.out * r]));
    layers.set(target.module, { A: ops.reshape(A, [B, r, target.in]), B: ops.reshape(Bw, [B, target.out, r]) });
  });
  return { embedding, lora: { layers, scale: c.lora_alpha / r } };
}

/** The initial parameters' rule: which tensors start at zero (the B heads). */
export const isZeroInitialised = (name: string): boolean => name.startsWith('hyper.b_heads.');
