// Original Stable Diffusion "single-file" checkpoints (the CompVis / Stability LDM layout
// that A1111, ComfyUI and model sites use: `model.diffusion_model.*` UNet,
// `first_stage_model.*` VAE, `cond_stage_model.*` text encoder) → the diffusers /
// transformers names a pack uses. The name tables are built from the configs (number of
// levels and layers_per_block), so non-standard sizes convert too; the layout rules are
// those described in ../shared/data/reference/single-file/README.md. Only names change,
// except:
//   - VAE mid-block attention q/k/v/proj_out are 1×1 convs [C,C,1,1] in LDM and Linear
//     [C,C] in diffusers: the same bytes, the trailing 1×1 dropped;
//   - SD 2.x (OpenCLIP) text attention stores q, k, v stacked in in_proj_weight [3C, C]
//     (and in_proj_bias [3C]): rows 0:C, C:2C, 2C:3C are contiguous byte ranges.
// Every source name is either used or ignored for a stated reason (EMA copies, noise
// schedule buffers, position ids, OpenCLIP's last block / projection / logit scale). An
// unplaced name inside a part of the model (model.*, first_stage_model.*, cond_stage_model.*,
// conditioner.*) is an error: the weights do not fit the config, and converting the rest would
// give a different model. A name outside every part (e.g. a textual-inversion trainer's
// embedding_manager.*, LoRA or ControlNet tensors saved alongside) cannot change the SD model:
// it is left out and reported as an extra, which the builder prints as a warning.

export type SdFamily = 'sd1' | 'sd2';
export type LdmComponent = 'unet' | 'vae' | 'text_encoder';

/** Where a diffusers tensor's values are in the single file. */
export interface MappedTensor {
  /** Source name in the single file. */
  source: string;
  /** The diffusers tensor's shape. */
  shape: number[];
  /** First element inside the source tensor (0 unless a slice of a stacked tensor). */
  elementOffset: number;
}

export interface LdmConversion {
  family: SdFamily;
  components: Record<LdmComponent, Map<string, MappedTensor>>;
  /** Source name → why it is not used. */
  ignored: Map<string, string>;
  /** Names outside every part of an SD model, left out (the builder warns about them). */
  extras: string[];
}

/** Prefixes of the parts of an SD model in the single-file layouts (LDM, and SGM's conditioner). */
const PART_PREFIXES = ['model.', 'first_stage_model.', 'cond_stage_model.', 'conditioner.', 'model_ema.'];

/** How many names to list in a message before "… and N more". */
const LIST_MAX = 12;

/** `names` grouped by their first dotted component: "embedding_manager.* (3)", most first. */
export function groupByPrefix(names: readonly string[], max = LIST_MAX): string {
  const groups = new Map<string, number>();
  for (const n of names) {
    const head = n.includes('.') ? `${n.slice(0, n.indexOf('.'))}.*` : n;
    groups.set(head, (groups.get(head) ?? 0) + 1);
  }
  const sorted = [...groups].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = sorted.slice(0, max).map(([g, k]) => (k === 1 ? g : `${g} (${k})`));
  return shown.join(', ') + (sorted.length > max ? `, … and ${sorted.length - max} more groups` : '');
}

export interface UNetLayout {
  block_out_channels: number[];
  layers_per_block: number;
  down_block_types: string[];
  up_block_types: string[];
}
export interface VaeLayout {
  block_out_channels: number[];
  layers_per_block: number;
}

export const UNET_PREFIX = 'model.diffusion_model.';
export const VAE_PREFIX = 'first_stage_model.';
export const SD1_TEXT_PREFIX = 'cond_stage_model.transformer.';
export const SD2_TEXT_PREFIX = 'cond_stage_model.model.';

/** LatentDiffusion.register_schedule's persistent buffers. */
const SCHEDULE_BUFFERS = new Set([
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
]);

/** [LDM prefix, diffusers prefix, inner renames] — a block and how names inside it change. */
type Rule = [ldm: string, diffusers: string, inner: readonly (readonly [string, string])[]];

const UNET_RESNET: readonly (readonly [string, string])[] = [
  ['in_layers.0.', 'norm1.'],
  ['in_layers.2.', 'conv1.'],
  ['out_layers.0.', 'norm2.'],
  ['out_layers.3.', 'conv2.'],
  ['emb_layers.1.', 'time_emb_proj.'],
  ['skip_connection.', 'conv_shortcut.'],
];
const VAE_RESNET: readonly (readonly [string, string])[] = [['nin_shortcut.', 'conv_shortcut.']];
const VAE_ATTENTION: readonly (readonly [string, string])[] = [
  ['norm.', 'group_norm.'],
  ['q.', 'to_q.'],
  ['k.', 'to_k.'],
  ['v.', 'to_v.'],
  ['proj_out.', 'to_out.0.'],
];
const SAME: readonly (readonly [string, string])[] = [];

const hasAttention = (type: string) => type.startsWith('CrossAttn');

/** Block rules of the UNet for a config (README: "LDM numbering depends on layers_per_block"). */
export function unetRules(c: UNetLayout): Rule[] {
  const L = c.layers_per_block;
  const n = c.block_out_channels.length;
  const rules: Rule[] = [
    ['time_embed.0.', 'time_embedding.linear_1.', SAME],
    ['time_embed.2.', 'time_embedding.linear_2.', SAME],
    ['input_blocks.0.0.', 'conv_in.', SAME],
    ['out.0.', 'conv_norm_out.', SAME],
    ['out.2.', 'conv_out.', SAME],
    ['middle_block.0.', 'mid_block.resnets.0.', UNET_RESNET],
    ['middle_block.1.', 'mid_block.attentions.0.', SAME],
    ['middle_block.2.', 'mid_block.resnets.1.', UNET_RESNET],
  ];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < L; j++) {
      const k = (L + 1) * i + j + 1;
      rules.push([`input_blocks.${k}.0.`, `down_blocks.${i}.resnets.${j}.`, UNET_RESNET]);
      if (hasAttention(c.down_block_types[i]))
        rules.push([`input_blocks.${k}.1.`, `down_blocks.${i}.attentions.${j}.`, SAME]);
    }
    if (i < n - 1)
      rules.push([`input_blocks.${(L + 1) * (i + 1)}.0.op.`, `down_blocks.${i}.downsamplers.0.conv.`, SAME]);
    const upAttn = hasAttention(c.up_block_types[i]);
    for (let j = 0; j < L + 1; j++) {
      const k = (L + 1) * i + j;
      rules.push([`output_blocks.${k}.0.`, `up_blocks.${i}.resnets.${j}.`, UNET_RESNET]);
      if (upAttn) rules.push([`output_blocks.${k}.1.`, `up_blocks.${i}.attentions.${j}.`, SAME]);
    }
    if (i < n - 1)
      rules.push([
        `output_blocks.${(L + 1) * i + L}.${upAttn ? 2 : 1}.conv.`,
        `up_blocks.${i}.upsamplers.0.conv.`,
        SAME,
      ]);
  }
  return rules;
}

/** Block rules of the VAE (decoder levels are numbered in reverse in LDM). */
export function vaeRules(c: VaeLayout): Rule[] {
  const L = c.layers_per_block;
  const n = c.block_out_channels.length;
  const rules: Rule[] = [];
  for (const part of ['encoder', 'decoder']) {
    rules.push(
      [`${part}.conv_in.`, `${part}.conv_in.`, SAME],
      [`${part}.conv_out.`, `${part}.conv_out.`, SAME],
      [`${part}.norm_out.`, `${part}.conv_norm_out.`, SAME],
      [`${part}.mid.block_1.`, `${part}.mid_block.resnets.0.`, VAE_RESNET],
      [`${part}.mid.block_2.`, `${part}.mid_block.resnets.1.`, VAE_RESNET],
      [`${part}.mid.attn_1.`, `${part}.mid_block.attentions.0.`, VAE_ATTENTION],
    );
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < L; j++)
      rules.push([`encoder.down.${i}.block.${j}.`, `encoder.down_blocks.${i}.resnets.${j}.`, VAE_RESNET]);
    if (i < n - 1) rules.push([`encoder.down.${i}.downsample.`, `encoder.down_blocks.${i}.downsamplers.0.`, SAME]);
    for (let j = 0; j < L + 1; j++)
      rules.push([`decoder.up.${n - 1 - i}.block.${j}.`, `decoder.up_blocks.${i}.resnets.${j}.`, VAE_RESNET]);
    if (i < n - 1) rules.push([`decoder.up.${n - 1 - i}.upsample.`, `decoder.up_blocks.${i}.upsamplers.0.`, SAME]);
  }
  rules.push(['quant_conv.', 'quant_conv.', SAME], ['post_quant_conv.', 'post_quant_conv.', SAME]);
  return rules;
}

/** OpenCLIP text tower (SD 2.x) → transformers CLIPTextModel; q/k/v splitting is done by the caller. */
export function openClipRules(layers: number): Rule[] {
  const rules: Rule[] = [
    ['token_embedding.', 'text_model.embeddings.token_embedding.', SAME],
    ['positional_embedding', 'text_model.embeddings.position_embedding.weight', SAME],
    ['ln_final.', 'text_model.final_layer_norm.', SAME],
  ];
  const inner: [string, string][] = [
    ['ln_1.', 'layer_norm1.'],
    ['ln_2.', 'layer_norm2.'],
    ['mlp.c_fc.', 'mlp.fc1.'],
    ['mlp.c_proj.', 'mlp.fc2.'],
    ['attn.out_proj.', 'self_attn.out_proj.'],
  ];
  for (let i = 0; i < layers; i++)
    rules.push([`transformer.resblocks.${i}.`, `text_model.encoder.layers.${i}.`, inner]);
  return rules;
}

/** Rewrites `name` by the rule whose prefix (on side `from`) is longest; null if none matches. */
function rewrite(name: string, rules: readonly Rule[], from: 0 | 1): string | null {
  const to = from === 0 ? 1 : 0;
  let best: Rule | null = null;
  for (const r of rules) if (name.startsWith(r[from]) && (!best || r[from].length > best[from].length)) best = r;
  if (!best) return null;
  const rest = name.slice(best[from].length);
  if (best[2].length === 0) return best[to] + rest;
  for (const pair of best[2])
    if (rest.startsWith(pair[from])) return best[to] + pair[to] + rest.slice(pair[from].length);
  // Inner names that do not change (VAE resnet norm1/conv1/…, attention blocks).
  return best[2].some((p) => rest.startsWith(p[to])) ? null : best[to] + rest;
}

export interface LdmConfigs {
  unet: UNetLayout;
  vae: VaeLayout;
  /** The text encoder's transformer layers (SD 2: 23 of OpenCLIP's 24). */
  textLayers: number;
}

/** SD 1.x or 2.x from the checkpoint's names and shapes; null when it is neither. */
export function detectFamily(shapes: ReadonlyMap<string, readonly number[]>): { family: SdFamily; why: string } | null {
  const names = [...shapes.keys()];
  const crossK = shapes.get(`${UNET_PREFIX}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`);
  const sd2Text = names.some((n) => n.startsWith(SD2_TEXT_PREFIX));
  const sd1Text = names.some((n) => n.startsWith(SD1_TEXT_PREFIX));
  if (sd2Text && !sd1Text)
    return {
      family: 'sd2',
      why: `OpenCLIP text encoder (${SD2_TEXT_PREFIX}*)${crossK ? `, cross-attention width ${crossK[1]}` : ''}`,
    };
  if (sd1Text && !sd2Text)
    return {
      family: 'sd1',
      why: `CLIP text encoder (${SD1_TEXT_PREFIX}*)${crossK ? `, cross-attention width ${crossK[1]}` : ''}`,
    };
  if (crossK)
    return crossK[1] === 1024
      ? { family: 'sd2', why: 'cross-attention width 1024' }
      : crossK[1] === 768
        ? { family: 'sd1', why: 'cross-attention width 768' }
        : null;
  return null;
}

/** Why a name that feeds no pack tensor is left out, or null if it is not a known leftover. */
function ignoreReason(name: string, family: SdFamily, textLayers: number, ema: boolean): string | null {
  if (SCHEDULE_BUFFERS.has(name) || name === 'denoiser.sigmas')
    return 'noise schedule buffer (the scheduler config defines the schedule)';
  if (name === 'model_ema.decay' || name === 'model_ema.num_updates') return 'EMA bookkeeping';
  if (name.startsWith('model_ema.')) return ema ? null : 'EMA copy of the UNet (pass --ema to use it instead)';
  if (/^cond_stage_model\.transformer\.(text_model\.)?embeddings\.position_ids$/.test(name))
    return 'position ids (0…76, implied)';
  if (family === 'sd2') {
    if (name === `${SD2_TEXT_PREFIX}text_projection`)
      return "OpenCLIP's text projection (SD 2 conditions on hidden states)";
    if (name === `${SD2_TEXT_PREFIX}logit_scale`) return "OpenCLIP's contrastive logit scale";
    const m = /^cond_stage_model\.model\.transformer\.resblocks\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= textLayers)
      return `OpenCLIP block ${m[1]}: SD 2 uses the output of block ${textLayers - 1} (penultimate layer)`;
  }
  return null;
}

/** What to do about names that fit no part: the likely cause and the option that helps. */
function unknownHint(unknown: readonly string[]): string {
  if (unknown.some((n) => n.startsWith('conditioner.') || /\.label_emb\./.test(n)))
    return 'it looks like SDXL or another architecture, which packs do not support';
  if (unknown.some((n) => n.startsWith('model_ema.')))
    return 'EMA copies that match no UNet weight: pack without --ema';
  return (
    "if it is an SD 1.x/2.x model with a non-standard layout (other layers per block, channels or text layers), give the diffusers folder of its configs: --config <folder> in the CLI, or the model's config folder in the app's Model step; " +
    '--variant sd15|sd21|sd21-base picks between the bundled configs'
  );
}

/** The EMA name ldm's LitEma gives a UNet parameter: "model_ema." + its name without dots. */
export const emaName = (ldmUnetName: string) => `model_ema.${ldmUnetName.slice('model.'.length).replace(/\./g, '')}`;

/**
 * Maps every tensor of a single-file checkpoint to the pack's diffusers names, or throws
 * listing every name it could not place.
 */
export function convertLdm(
  shapes: ReadonlyMap<string, readonly number[]>,
  family: SdFamily,
  cfg: LdmConfigs,
  o: { ema?: boolean } = {},
): LdmConversion {
  const ema = !!o.ema;
  const unet = unetRules(cfg.unet);
  const vae = vaeRules(cfg.vae);
  const clip = openClipRules(cfg.textLayers);
  const components: LdmConversion['components'] = { unet: new Map(), vae: new Map(), text_encoder: new Map() };
  const ignored = new Map<string, string>();
  const unknown: string[] = [];
  const extras: string[] = [];
  const emaUsed = new Set<string>();
  const put = (c: LdmComponent, name: string, t: MappedTensor) => {
    if (components[c].has(name))
      throw new Error(`single file: ${t.source} and ${components[c].get(name)!.source} both map to ${c} ${name}`);
    components[c].set(name, t);
  };
  for (const [name, shape] of shapes) {
    const why = ignoreReason(name, family, cfg.textLayers, ema);
    if (why) {
      ignored.set(name, why);
      continue;
    }
    if (name.startsWith('model_ema.')) continue; // used through the UNet names below (ema)
    if (name.startsWith(UNET_PREFIX)) {
      const d = rewrite(name.slice(UNET_PREFIX.length), unet, 0);
      if (!d) {
        unknown.push(name);
        continue;
      }
      let source = name;
      if (ema) {
        source = emaName(name);
        const s = shapes.get(source);
        if (!s) throw new Error(`single file: --ema asked for, but ${source} (the EMA copy of ${name}) is missing`);
        if (s.join() !== shape.join())
          throw new Error(`single file: ${source} has shape [${s}], ${name} has [${shape}]`);
        emaUsed.add(source);
        ignored.set(name, 'non-EMA UNet weight (--ema takes the EMA copy)');
      }
      put('unet', d, { source, shape: [...shape], elementOffset: 0 });
    } else if (name.startsWith(VAE_PREFIX)) {
      const d = rewrite(name.slice(VAE_PREFIX.length), vae, 0);
      if (!d) {
        unknown.push(name);
        continue;
      }
      const squeeze = /mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(d) && shape.length === 4;
      if (squeeze && (shape[2] !== 1 || shape[3] !== 1))
        throw new Error(`single file: ${name} has shape [${shape}], expected a 1×1 conv`);
      put('vae', d, { source: name, shape: squeeze ? shape.slice(0, 2) : [...shape], elementOffset: 0 });
    } else if (family === 'sd1' && name.startsWith(SD1_TEXT_PREFIX)) {
      const rest = name.slice(SD1_TEXT_PREFIX.length);
      put('text_encoder', rest.startsWith('text_model.') ? rest : `text_model.${rest}`, {
        source: name,
        shape: [...shape],
        elementOffset: 0,
      });
    } else if (family === 'sd2' && name.startsWith(SD2_TEXT_PREFIX)) {
      const rest = name.slice(SD2_TEXT_PREFIX.length);
      const qkv = /^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$/.exec(rest);
      if (qkv) {
        const rows = shape[0] / 3;
        if (!Number.isInteger(rows))
          throw new Error(`single file: ${name} has shape [${shape}], not 3 stacked projections`);
        const per = shape.slice(1).reduce((a, b) => a * b, 1);
        ['q_proj', 'k_proj', 'v_proj'].forEach((p, k) =>
          put('text_encoder', `text_model.encoder.layers.${qkv[1]}.self_attn.${p}.${qkv[2]}`, {
            source: name,
            shape: [rows, ...shape.slice(1)],
            elementOffset: k * rows * per,
          }),
        );
        continue;
      }
      const d = rewrite(rest, clip, 0);
      if (!d) unknown.push(name);
      else put('text_encoder', d, { source: name, shape: [...shape], elementOffset: 0 });
    } else if (PART_PREFIXES.some((p) => name.startsWith(p))) {
      unknown.push(name);
    } else {
      extras.push(name);
    }
  }
  if (ema) {
    for (const name of shapes.keys())
      if (name.startsWith('model_ema.') && !ignored.has(name) && !emaUsed.has(name)) unknown.push(name);
  }
  if (unknown.length) {
    const sd = family === 'sd1' ? 'SD 1.x' : 'SD 2.x';
    throw new Error(
      `single file: ${unknown.length} tensor name${unknown.length === 1 ? '' : 's'} that no ${sd} part has under the configs used (${unknownHint(unknown)}):\n  ${unknown.slice(0, LIST_MAX).join('\n  ')}${unknown.length > LIST_MAX ? `\n  … and ${unknown.length - LIST_MAX} more` : ''}`,
    );
  }
  return { family, components, ignored, extras };
}

/**
 * diffusers name → LDM name (and the LDM shape): the inverse of convertLdm's naming, for
 * round-trip checks and for writing the layout back. SD 2 q/k/v map to in_proj rows.
 */
export function diffusersToLdmName(component: LdmComponent, name: string, family: SdFamily, cfg: LdmConfigs): string {
  if (component === 'unet') {
    const l = rewrite(name, unetRules(cfg.unet), 1);
    if (!l) throw new Error(`no LDM name for unet ${name}`);
    return UNET_PREFIX + l;
  }
  if (component === 'vae') {
    const l = rewrite(name, vaeRules(cfg.vae), 1);
    if (!l) throw new Error(`no LDM name for vae ${name}`);
    return VAE_PREFIX + l;
  }
  if (family === 'sd1') return SD1_TEXT_PREFIX + name;
  const qkv = /^text_model\.encoder\.layers\.(\d+)\.self_attn\.[qkv]_proj\.(weight|bias)$/.exec(name);
  if (qkv) return `${SD2_TEXT_PREFIX}transformer.resblocks.${qkv[1]}.attn.in_proj_${qkv[2]}`;
  const l = rewrite(name, openClipRules(cfg.textLayers), 1);
  if (!l) throw new Error(`no LDM name for text encoder ${name}`);
  return SD2_TEXT_PREFIX + l;
}
