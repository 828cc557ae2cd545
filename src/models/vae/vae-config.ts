// diffusers AutoencoderKL config (config.json field names).
export interface VaeConfig {
  in_channels: number;
  out_channels: number;
  latent_channels: number;
  block_out_channels: number[];
  down_block_types: string[];
  up_block_types: string[];
  layers_per_block: number;
  norm_num_groups: number;
  scaling_factor: number;
  sample_size?: number;
  mid_block_add_attention?: boolean;
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
}

export function checkVaeConfig(c: VaeConfig): VaeConfig {
  if (c.down_block_types.some((t) => t !== 'DownEncoderBlock2D') || c.up_block_types.some((t) => t !== 'UpDecoderBlock2D')) {
    throw new Error('vae config: only DownEncoderBlock2D / UpDecoderBlock2D are supported');
  }
  if (c.down_block_types.length !== c.block_out_channels.length) throw new Error('vae config: one block type per width');
  return c;
}
