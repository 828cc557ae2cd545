// The subset of diffusers' UNet2DConditionModel config that SD 1.x / 2.x use, read from
// its config.json verbatim (same field names), with the legacy naming resolved.

export interface UNetConfig {
  in_channels: number;
  out_channels: number;
  sample_size: number;
  block_out_channels: number[];
  down_block_types: string[];
  up_block_types: string[];
  mid_block_type?: string | null;
  layers_per_block: number;
  /** Legacy diffusers naming: this is the number of heads (int, or one per block). */
  attention_head_dim: number | number[];
  num_attention_heads?: number | number[] | null;
  cross_attention_dim: number;
  norm_num_groups: number;
  norm_eps: number;
  use_linear_projection: boolean;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  downsample_padding?: number;
  mid_block_scale_factor?: number;
  transformer_layers_per_block?: number;
  upcast_attention?: boolean;
  only_cross_attention?: boolean;
}

export interface ResolvedUNetConfig extends UNetConfig {
  /** Heads per down block (up blocks use them reversed, the mid block the last). */
  heads: number[];
  timeEmbedDim: number;
}

const SUPPORTED_DOWN = new Set(['CrossAttnDownBlock2D', 'DownBlock2D']);
const SUPPORTED_UP = new Set(['CrossAttnUpBlock2D', 'UpBlock2D']);

export function resolveUNetConfig(c: UNetConfig): ResolvedUNetConfig {
  const n = c.block_out_channels.length;
  if (c.down_block_types.length !== n || c.up_block_types.length !== n) {
    throw new Error('unet config: down/up block types must match block_out_channels');
  }
  for (const t of c.down_block_types) if (!SUPPORTED_DOWN.has(t)) throw new Error(`unet config: unsupported down block ${t}`);
  for (const t of c.up_block_types) if (!SUPPORTED_UP.has(t)) throw new Error(`unet config: unsupported up block ${t}`);
  if ((c.mid_block_type ?? 'UNetMidBlock2DCrossAttn') !== 'UNetMidBlock2DCrossAttn') {
    throw new Error(`unet config: unsupported mid block ${c.mid_block_type}`);
  }
  if ((c.transformer_layers_per_block ?? 1) !== 1) throw new Error('unet config: transformer_layers_per_block must be 1');
  if (c.only_cross_attention) throw new Error('unet config: only_cross_attention is not supported');
  const h = c.num_attention_heads ?? c.attention_head_dim;
  const heads = Array.isArray(h) ? [...h] : Array(n).fill(h);
  if (heads.length !== n) throw new Error('unet config: one head count per block expected');
  c.block_out_channels.forEach((ch, i) => {
    if (ch % heads[i] !== 0) throw new Error(`unet config: ${ch} channels not divisible by ${heads[i]} heads`);
  });
  return { ...c, heads, timeEmbedDim: c.block_out_channels[0] * 4 };
}
