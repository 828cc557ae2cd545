// Configuration of the tuning encoder (paper App. A; our own parameter names).
import { R, type Checker, type NumOpts } from '../../domain/json-checker.ts';
import { LORA_ALPHA, LORA_RANK, MANIFEST_LIMITS as L } from '../../domain/limits.ts';
import { LORA_TARGETS } from '../lora.ts';
import type { ResolvedUNetConfig } from '../unet/unet-config.ts';

export interface LoraTarget {
  /** Module path in the UNet, e.g. "mid_block.attentions.0.transformer_blocks.0.attn2.to_k". */
  module: string;
  in: number;
  out: number;
}

/**
 * The tuning encoder's config (its config.json), written by the training code and carried
 * verbatim in a pack's manifest; the pack manifest refers to this type.
 */
export interface TuningEncoderConfig {
  /** The class the pack names ("LikenessTuningEncoder"); required in a pack's manifest. */
  _class_name?: string;
  /** false: the deterministic initialisation, not trained (personalization then needs more steps). */
  trained?: boolean;
  /** CLIP vision hidden size and token grid (image_size / patch_size). */
  clip_channels: number;
  clip_grid: number;
  /** UNet mid-block width and spatial size (latent_size / 2^(blocks−1)). */
  unet_channels: number;
  unet_grid: number;
  /** Trunk width D, number of residual conv blocks, group-norm groups. */
  width: number;
  trunk_blocks: number;
  groups: number;
  /** Text-encoder hidden size: the size of v*. */
  token_dim: number;
  lora_rank: number;
  lora_alpha: number;
  /** Timestep at which the UNet encoder reads the clean latent (0: the latent as it is). */
  unet_timestep: number;
  [field: string]: unknown;
}

/**
 * The one check of a tuning encoder config at JSON path `p` (its fields; the pack format's own
 * `_class_name` is the manifest's to check). Whether it fits the base model's configs is
 * checked when the encoder is built from them.
 */
export function checkTuningEncoderConfig(c: Checker, json: unknown, p: string): void {
  const t = c.object(json, p);
  if (!t) return;
  const size: NumOpts = { integer: true, min: 1, max: L.width.max };
  for (const k of ['clip_channels', 'clip_grid', 'unet_channels', 'unet_grid', 'width', 'trunk_blocks', 'groups', 'token_dim']) c.num(t, k, p, size);
  c.num(t, 'lora_rank', p, R(LORA_RANK));
  c.num(t, 'lora_alpha', p, R(LORA_ALPHA));
  c.num(t, 'unet_timestep', p, { integer: true, min: 0, max: L.trainTimesteps.max });
  c.bool(t, 'trained', p);
}

/** Every to_q/to_k/to_v/to_out.0 of every attn1/attn2, in UNet order. */
export function loraTargets(u: ResolvedUNetConfig): LoraTarget[] {
  const out: LoraTarget[] = [];
  const add = (prefix: string, C: number) => {
    for (const attn of ['attn1', 'attn2']) {
      const ctx = attn === 'attn1' ? C : u.cross_attention_dim;
      for (const t of LORA_TARGETS) {
        const inDim = t === 'to_k' || t === 'to_v' ? ctx : C;
        out.push({ module: `${prefix}.transformer_blocks.0.${attn}.${t}`, in: inDim, out: C });
      }
    }
  };
  const ch = u.block_out_channels;
  u.down_block_types.forEach((type, i) => {
    if (type !== 'CrossAttnDownBlock2D') return;
    for (let j = 0; j < u.layers_per_block; j++) add(`down_blocks.${i}.attentions.${j}`, ch[i]);
  });
  add('mid_block.attentions.0', ch[ch.length - 1]);
  const rev = [...ch].reverse();
  u.up_block_types.forEach((type, i) => {
    if (type !== 'CrossAttnUpBlock2D') return;
    for (let j = 0; j <= u.layers_per_block; j++) add(`up_blocks.${i}.attentions.${j}`, rev[i]);
  });
  return out;
}
