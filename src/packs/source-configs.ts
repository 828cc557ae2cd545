// Model configs as checkpoints ship them, normalised for a pack: keys an old diffusers or
// transformers version did not write (SD 1.5's Hub configs are from diffusers 0.6) take the
// library's constructor defaults, as `from_config` / `from_pretrained` would give them, and
// the bundled SD 1.5 / 2.1 configs used for single-file checkpoints without --config.
// The values are the published configs of runwayml/stable-diffusion-v1-5 and
// stabilityai/stable-diffusion-2-1(-base), as listed in ../shared/data/reference/keys.
import type { SdFamily } from './ldm-convert.ts';

type Json = Record<string, unknown>;

/** diffusers UNet2DConditionModel.__init__ defaults (the keys SD 1.x/2.x configs may omit). */
export const UNET_DEFAULTS: Json = {
  sample_size: null,
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  only_cross_attention: false,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  act_fn: 'silu',
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  transformer_layers_per_block: 1,
  attention_head_dim: 8,
  num_attention_heads: null,
  use_linear_projection: false,
  upcast_attention: false,
};

/** diffusers AutoencoderKL.__init__ defaults. */
export const VAE_DEFAULTS: Json = {
  in_channels: 3,
  out_channels: 3,
  down_block_types: ['DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D'],
  block_out_channels: [64],
  layers_per_block: 1,
  act_fn: 'silu',
  latent_channels: 4,
  norm_num_groups: 32,
  sample_size: 32,
  scaling_factor: 0.18215,
  shift_factor: null,
  force_upcast: true,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
};

/** transformers CLIPTextConfig defaults. */
export const CLIP_TEXT_DEFAULTS: Json = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
  bos_token_id: 49406,
  eos_token_id: 49407,
};

/** transformers CLIPVisionConfig defaults. */
export const CLIP_VISION_DEFAULTS: Json = {
  hidden_size: 768,
  intermediate_size: 3072,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

/** Fills the keys `json` lacks (or has as null where null is not meaningful) from `defaults`. */
export function withDefaults(json: Json, defaults: Json): Json {
  const out: Json = { ...json };
  for (const [k, v] of Object.entries(defaults)) if (out[k] === undefined) out[k] = v;
  return out;
}

const SD_UNET_COMMON: Json = {
  _class_name: 'UNet2DConditionModel',
  act_fn: 'silu',
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};

const SD_VAE: Json = {
  _class_name: 'AutoencoderKL',
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  scaling_factor: 0.18215,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
};

const SD_SCHEDULE: Json = {
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};

export type SdVariant = 'sd15' | 'sd21' | 'sd21-base';
export const SD_VARIANTS: readonly SdVariant[] = ['sd15', 'sd21', 'sd21-base'];

export interface BundledConfigs {
  unet: Json;
  vae: Json;
  textEncoder: Json;
  scheduler: Json;
  /** The tokenizer's pad token (SD 2's OpenCLIP tokenizer pads with "!"). */
  padToken: string;
}

/** The published configs of SD 1.5, SD 2.1 (768, v-prediction) and SD 2.1-base (512, epsilon). */
export function bundledConfigs(variant: SdVariant): BundledConfigs {
  if (variant === 'sd15') {
    return {
      unet: { ...SD_UNET_COMMON, attention_head_dim: 8, cross_attention_dim: 768, sample_size: 64 },
      vae: SD_VAE,
      textEncoder: {
        architectures: ['CLIPTextModel'],
        hidden_act: 'quick_gelu',
        hidden_size: 768,
        intermediate_size: 3072,
        layer_norm_eps: 1e-5,
        max_position_embeddings: 77,
        num_attention_heads: 12,
        num_hidden_layers: 12,
        projection_dim: 768,
        vocab_size: 49408,
        bos_token_id: 0,
        eos_token_id: 2,
        pad_token_id: 1,
      },
      scheduler: { _class_name: 'PNDMScheduler', _diffusers_version: '0.6.0', ...SD_SCHEDULE },
      padToken: '<|endoftext|>',
    };
  }
  const v768 = variant === 'sd21';
  return {
    unet: {
      ...SD_UNET_COMMON,
      attention_head_dim: [5, 10, 20, 20],
      cross_attention_dim: 1024,
      use_linear_projection: true,
      sample_size: v768 ? 96 : 64,
      upcast_attention: v768,
    },
    vae: { ...SD_VAE, sample_size: v768 ? 768 : 512 },
    textEncoder: {
      architectures: ['CLIPTextModel'],
      hidden_act: 'gelu',
      hidden_size: 1024,
      intermediate_size: 4096,
      layer_norm_eps: 1e-5,
      max_position_embeddings: 77,
      num_attention_heads: 16,
      num_hidden_layers: 23,
      projection_dim: 512,
      vocab_size: 49408,
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
    },
    scheduler: v768
      ? { _class_name: 'DDIMScheduler', _diffusers_version: '0.8.0', ...SD_SCHEDULE, prediction_type: 'v_prediction' }
      : { _class_name: 'PNDMScheduler', _diffusers_version: '0.10.0.dev0', ...SD_SCHEDULE, prediction_type: 'epsilon' },
    padToken: '!',
  };
}

/** Which bundled configs a single file gets when no --config / --variant says. */
export function defaultVariant(family: SdFamily, fileName: string): { variant: SdVariant; why: string } {
  if (family === 'sd1') return { variant: 'sd15', why: 'SD 1.x weights' };
  if (/base|512/i.test(fileName)) return { variant: 'sd21-base', why: `SD 2.x weights, "base"/"512" in the file name` };
  return {
    variant: 'sd21',
    why: 'SD 2.x weights (768-v and 512-base files have the same tensors: assumed 768-v, v-prediction; pass --variant sd21-base for a 512 epsilon model)',
  };
}
