// The diffusers UNet2DConditionModel config that SD 1.x / 2.x use, read from its
// config.json verbatim (same field names), and resolved for the model code: legacy naming,
// per-block forms and diffusers' constructor defaults. checkUNetConfig is its one check.
import { blockList, checked, idx, key, kind, R, type Checker } from '../../domain/json-checker.ts';
import { MANIFEST_LIMITS as L } from '../../domain/limits.ts';
import { ModelConfigError } from '../model-config-error.ts';

export type UNetDownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UNetUpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/**
 * diffusers `UNet2DConditionModel` config (unet/config.json) as written: per-block fields may
 * be one value or a list, fields an old diffusers did not write may be absent, and fields
 * this code does not read are kept. The pack manifest refers to this type.
 */
export interface UNetConfig {
  sample_size: number;
  in_channels: number;
  out_channels: number;
  down_block_types: UNetDownBlockType[];
  up_block_types: UNetUpBlockType[];
  /** null: no mid block. Absent: diffusers' default, UNetMidBlock2DCrossAttn. */
  mid_block_type?: 'UNetMidBlock2DCrossAttn' | null;
  block_out_channels: number[];
  layers_per_block: number | number[];
  cross_attention_dim: number | number[];
  /** Legacy diffusers naming: this is the number of heads unless num_attention_heads is set. */
  attention_head_dim: number | number[];
  num_attention_heads?: number | number[] | null;
  norm_num_groups: number;
  norm_eps?: number;
  act_fn?: 'silu';
  use_linear_projection?: boolean;
  transformer_layers_per_block?: number | number[];
  flip_sin_to_cos?: boolean;
  freq_shift?: number;
  upcast_attention?: boolean;
  only_cross_attention?: boolean | boolean[];
  downsample_padding?: number;
  mid_block_scale_factor?: number;
  center_input_sample?: boolean;
  [field: string]: unknown;
}

/** What the model code reads: one value per field, diffusers' defaults filled in. */
export interface ResolvedUNetConfig {
  sample_size: number;
  in_channels: number;
  out_channels: number;
  down_block_types: UNetDownBlockType[];
  up_block_types: UNetUpBlockType[];
  block_out_channels: number[];
  layers_per_block: number;
  cross_attention_dim: number;
  norm_num_groups: number;
  norm_eps: number;
  use_linear_projection: boolean;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  upcast_attention: boolean;
  downsample_padding: number;
  mid_block_scale_factor: number;
  /** Heads per down block (up blocks use them reversed, the mid block the last). */
  heads: number[];
  timeEmbedDim: number;
}

/** Resolves a config that passes checkUNetConfig (throws ModelConfigError listing every problem otherwise). */
export function resolveUNetConfig(c: UNetConfig): ResolvedUNetConfig {
  checked((k) => checkUNetConfig(k, c, ''), (issues) => new ModelConfigError('unet', issues));
  const n = c.block_out_channels.length;
  const h = c.num_attention_heads ?? c.attention_head_dim;
  const heads = Array.isArray(h) ? [...h] : Array<number>(n).fill(h);
  return {
    sample_size: c.sample_size,
    in_channels: c.in_channels,
    out_channels: c.out_channels,
    down_block_types: c.down_block_types,
    up_block_types: c.up_block_types,
    block_out_channels: c.block_out_channels,
    layers_per_block: uniform(c.layers_per_block),
    cross_attention_dim: uniform(c.cross_attention_dim),
    norm_num_groups: c.norm_num_groups,
    // diffusers' UNet2DConditionModel.__init__ defaults.
    norm_eps: c.norm_eps ?? 1e-5,
    use_linear_projection: c.use_linear_projection ?? false,
    flip_sin_to_cos: c.flip_sin_to_cos ?? true,
    freq_shift: c.freq_shift ?? 0,
    upcast_attention: c.upcast_attention ?? false,
    downsample_padding: c.downsample_padding ?? 1,
    mid_block_scale_factor: c.mid_block_scale_factor ?? 1,
    heads,
    timeEmbedDim: c.block_out_channels[0] * 4,
  };
}

/** A per-block field as one value (checkUNetConfig made sure every block has the same). */
function uniform(v: number | number[]): number {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The one check of a UNet config at JSON path `p`: what diffusers would accept and this
 * implementation runs. `pack`: values from the pack's other configs it must agree with.
 */
export function checkUNetConfig(c: Checker, json: unknown, p: string, pack: { textHidden?: number; latentChannels?: number } = {}): void {
  const { textHidden, latentChannels } = pack;
  const u = c.object(json, p);
  if (!u) return;
  c.num(u, 'sample_size', p, R(L.sampleSize));
  for (const io of ['in_channels', 'out_channels']) {
    const n = c.num(u, io, p, R(L.unetChannels));
    if (n !== undefined && latentChannels !== undefined && n !== latentChannels) {
      c.add(key(p, io), `${n} differs from the VAE's latent_channels ${latentChannels}`);
    }
  }
  const channels = blockList(c, c.numArray(u, 'block_out_channels', p, R(L.blockChannels)), key(p, 'block_out_channels'));
  const blocks = channels?.length;
  const down = c.array(u, 'down_block_types', p);
  const up = c.array(u, 'up_block_types', p);
  const checkTypes = (types: unknown[] | undefined, field: string, allowed: readonly string[]) => {
    if (!types) return;
    types.forEach((t, i) => {
      if (typeof t !== 'string' || !allowed.includes(t)) {
        c.add(idx(key(p, field), i), `expected one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${kind(t)}`);
      }
    });
    if (blocks !== undefined && types.length !== blocks) c.add(key(p, field), `expected ${blocks} entries (one per block_out_channels), got ${types.length}`);
  };
  checkTypes(down, 'down_block_types', ['CrossAttnDownBlock2D', 'DownBlock2D']);
  checkTypes(up, 'up_block_types', ['CrossAttnUpBlock2D', 'UpBlock2D']);
  if (u.mid_block_type !== undefined && u.mid_block_type !== null && u.mid_block_type !== 'UNetMidBlock2DCrossAttn') {
    c.add(key(p, 'mid_block_type'), `expected "UNetMidBlock2DCrossAttn" or null, got ${kind(u.mid_block_type)}`);
  }
  // This implementation builds every block alike: per-block lists must repeat one value.
  const layers = c.perBlock(u, 'layers_per_block', p, blocks, R(L.layersPerBlock));
  if (layers && layers.some((n) => n !== layers[0])) c.add(key(p, 'layers_per_block'), `must be the same for every block, got ${JSON.stringify(u.layers_per_block)}`);
  const tl = c.perBlock(u, 'transformer_layers_per_block', p, blocks, R(L.transformerLayersPerBlock, true));
  if (tl && tl.some((n) => n !== 1)) c.add(key(p, 'transformer_layers_per_block'), `only 1 is supported, got ${JSON.stringify(u.transformer_layers_per_block)}`);
  const cross = c.perBlock(u, 'cross_attention_dim', p, blocks, R(L.width));
  if (cross && textHidden !== undefined && cross.some((d) => d !== textHidden)) {
    c.add(key(p, 'cross_attention_dim'), `must equal the text encoder's hidden_size ${textHidden}, got ${JSON.stringify(u.cross_attention_dim)}`);
  } else if (cross && cross.some((d) => d !== cross[0])) {
    c.add(key(p, 'cross_attention_dim'), `must be the same for every block, got ${JSON.stringify(u.cross_attention_dim)}`);
  }
  // Heads: num_attention_heads when set, else the legacy attention_head_dim (see keys/README).
  const headsField = u.num_attention_heads !== undefined && u.num_attention_heads !== null ? 'num_attention_heads' : 'attention_head_dim';
  const legacy = c.perBlock(u, 'attention_head_dim', p, blocks, R(L.attentionHeadDim));
  const heads = headsField === 'attention_head_dim' ? legacy : c.perBlock(u, 'num_attention_heads', p, blocks, R(L.heads));
  const groups = c.num(u, 'norm_num_groups', p, R(L.normGroups));
  if (channels) {
    channels.forEach((ch, i) => {
      const at = idx(key(p, 'block_out_channels'), i);
      if (groups !== undefined && ch % groups !== 0) c.add(at, `${ch} channels are not divisible by norm_num_groups ${groups}`);
      if (heads && ch % heads[i] !== 0) c.add(at, `${ch} channels are not divisible by ${heads[i]} heads (${headsField})`);
    });
  }
  c.num(u, 'norm_eps', p, R(L.eps, true));
  c.str(u, 'act_fn', p, { optional: true, oneOf: ['silu'] });
  for (const b of ['use_linear_projection', 'flip_sin_to_cos', 'upcast_attention', 'center_input_sample']) c.bool(u, b, p);
  c.num(u, 'freq_shift', p, R(L.freqShift, true));
  c.num(u, 'downsample_padding', p, R(L.downsamplePadding, true));
  const oca = u.only_cross_attention;
  if (oca !== undefined && typeof oca !== 'boolean' && !(Array.isArray(oca) && oca.every((x) => typeof x === 'boolean'))) {
    c.add(key(p, 'only_cross_attention'), `expected true/false or a list of them, got ${kind(oca)}`);
  } else if (oca === true || (Array.isArray(oca) && oca.some(Boolean))) {
    c.add(key(p, 'only_cross_attention'), 'not supported (must be false)');
  }
  // Features of other UNets (SDXL, class-conditioned, GLIGEN, …) that this implementation does not run.
  for (const f of ['class_embed_type', 'addition_embed_type', 'encoder_hid_dim', 'time_cond_proj_dim', 'num_class_embeds']) {
    if (u[f] !== undefined && u[f] !== null) c.add(key(p, f), `not supported (must be null), got ${kind(u[f])}`);
  }
  const only: [string, unknown][] = [
    ['attention_type', 'default'],
    ['time_embedding_type', 'positional'],
    ['resnet_time_scale_shift', 'default'],
    ['dual_cross_attention', false],
  ];
  for (const [f, want] of only) {
    if (u[f] !== undefined && u[f] !== want) c.add(key(p, f), `only ${JSON.stringify(want)} is supported, got ${kind(u[f])}`);
  }
}
