// diffusers AutoencoderKL config (vae/config.json), read verbatim (same field names; fields
// this code does not read are kept). The pack manifest refers to this type and checks it with
// checkVaeConfigJson, the one check of it.
import { blockList, checked, idx, key, kind, R, type Checker } from '../../domain/json-checker.ts';
import { MANIFEST_LIMITS as L } from '../../domain/limits.ts';
import { ModelConfigError } from '../model-config-error.ts';
export interface VaeConfig {
  in_channels: number;
  out_channels: number;
  latent_channels: number;
  down_block_types: 'DownEncoderBlock2D'[];
  up_block_types: 'UpDecoderBlock2D'[];
  block_out_channels: number[];
  layers_per_block: number;
  norm_num_groups: number;
  act_fn?: 'silu';
  sample_size?: number;
  /** The pack's vaeScalingFactor is what the pipeline uses; this copy must agree with it. */
  scaling_factor?: number;
  shift_factor?: number | null;
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
  mid_block_add_attention?: boolean;
  [field: string]: unknown;
}

/** A VAE config that passed its check (throws ModelConfigError listing every problem otherwise). */
export function checkVaeConfig(c: VaeConfig): VaeConfig {
  checked((k) => checkVaeConfigJson(k, c, ''), (issues) => new ModelConfigError('vae', issues));
  return c;
}

/**
 * The one check of a VAE config at JSON path `p`; returns what the pack must agree with (its
 * latent channels, downsampling factor and the scaling factor the config states).
 */
export function checkVaeConfigJson(
  c: Checker,
  json: unknown,
  p: string,
): { latentChannels?: number; downsampleFactor?: number; scalingFactor?: number } {
  const v = c.object(json, p);
  if (!v) return {};
  c.num(v, 'in_channels', p, R(L.vaeChannels));
  c.num(v, 'out_channels', p, R(L.vaeChannels));
  const latentChannels = c.num(v, 'latent_channels', p, R(L.latentChannels));
  const channels = blockList(c, c.numArray(v, 'block_out_channels', p, R(L.blockChannels)), key(p, 'block_out_channels'));
  const blocks = channels?.length;
  for (const [field, type] of [['down_block_types', 'DownEncoderBlock2D'], ['up_block_types', 'UpDecoderBlock2D']] as const) {
    const types = c.array(v, field, p);
    if (!types) continue;
    types.forEach((t, i) => {
      if (t !== type) c.add(idx(key(p, field), i), `expected "${type}", got ${kind(t)}`);
    });
    if (blocks !== undefined && types.length !== blocks) c.add(key(p, field), `expected ${blocks} entries (one per block_out_channels), got ${types.length}`);
  }
  c.num(v, 'layers_per_block', p, R(L.layersPerBlock));
  const groups = c.num(v, 'norm_num_groups', p, R(L.normGroups));
  if (channels && groups !== undefined) {
    channels.forEach((ch, i) => {
      if (ch % groups !== 0) c.add(idx(key(p, 'block_out_channels'), i), `${ch} channels are not divisible by norm_num_groups ${groups}`);
    });
  }
  c.str(v, 'act_fn', p, { optional: true, oneOf: ['silu'] });
  c.num(v, 'sample_size', p, R(L.sampleSize, true));
  const scalingFactor = c.num(v, 'scaling_factor', p, R(L.vaeScalingFactor, true));
  if (v.shift_factor !== undefined && v.shift_factor !== null) c.num(v, 'shift_factor', p, { min: -100, max: 100 });
  for (const b of ['use_quant_conv', 'use_post_quant_conv', 'mid_block_add_attention', 'force_upcast']) c.bool(v, b, p);
  return { latentChannels, downsampleFactor: blocks === undefined ? undefined : 2 ** (blocks - 1), scalingFactor };
}
