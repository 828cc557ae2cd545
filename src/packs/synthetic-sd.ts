// A random-weight Stable Diffusion folder in the Hugging Face diffusers layout, with the real
// names, shapes, dtypes and configs of SD 1.5 / SD 2.1 (../shared/data/reference/keys):
// unet/, vae/, text_encoder/, tokenizer/, scheduler/, image_encoder/ (CLIP ViT-L/14 vision
// with projection), model_index.json. For scale tests and benchmarks: the real widths are
// what hits device limits, so CI may cut the number of layers but never a width.
//
// Values are deterministic per (seed, tensor name) — independent of file order and of the
// layer-count options — and scaled so activations stay finite through the whole model:
// weights of std 1/√fan_in, norm weights 1 / biases 0, other biases and embeddings std 0.02
// (uniformly distributed, see uniformStream). Tensors are generated and written in chunks
// (the fp32 SD 1.5 UNet is 3.4 GB). Node only.
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { clipText, clipTokenEmbeddings } from '../models/clip/clip-text.ts';
import type { ClipTextConfig, ClipVisionConfig } from '../models/clip/clip-config.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import { Params } from '../models/params.ts';
import { ParamRecorder, ShapeOps } from '../models/shape-ops.ts';
import { unet } from '../models/unet/unet.ts';
import { resolveUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { vaeDecode, vaeEncode } from '../models/vae/vae.ts';
import { checkVaeConfig, type VaeConfig } from '../models/vae/vae-config.ts';
import { compareCodePoints } from './safetensors.ts';

export type SyntheticVariant = 'sd15' | 'sd21' | 'sd21-base';

export interface SyntheticSdOptions {
  out: string;
  variant?: SyntheticVariant;
  dtype?: 'fp32' | 'fp16';
  /** Image size in pixels (multiple of 8); the UNet's sample_size is imageSize / 8. Default: the model's. */
  imageSize?: number;
  /** UNet resnets/attentions per down block (up blocks get one more). Default: the real 2. */
  unetLayersPerBlock?: number;
  /** VAE resnets per block. Default: the real 2. */
  vaeLayersPerBlock?: number;
  /** Text encoder transformer layers. Default: the real 12 (SD 1.5) / 23 (SD 2.1). */
  textLayers?: number;
  /** CLIP vision transformer layers. Default: the real 24. */
  visionLayers?: number;
  /** CLIP vision input size (multiple of 14). Default: the real 224 (257 tokens). */
  visionImageSize?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SyntheticSdSummary {
  out: string;
  /** component → number of tensors and parameters written */
  components: Record<string, { tensors: number; parameters: number; bytes: number }>;
}

export interface KeyEntry {
  name: string;
  shape: number[];
  /**
   * The tensors whose values, one after the other, this one holds (default: itself). A
   * renamed or stacked copy of diffusers tensors (a single-file checkpoint's name, SD 2's
   * q/k/v stacked in in_proj_weight) lists them, so its values are theirs, bit for bit.
   */
  from?: { name: string; shape: number[] }[];
}

const REFERENCE = new URL('../../../shared/data/reference/', import.meta.url);
const refPath = (rel: string) => new URL(rel, REFERENCE);
const readRef = (rel: string) => JSON.parse(readFileSync(refPath(rel), 'utf8'));

const VARIANTS: Record<SyntheticVariant, { unet: string; text: string; scheduler: string; imageSize: number }> = {
  sd15: {
    unet: 'sd15-unet',
    text: 'clip-vit-large-patch14-text',
    scheduler: 'runwayml--stable-diffusion-v1-5',
    imageSize: 512,
  },
  sd21: { unet: 'sd21-unet', text: 'sd21-text', scheduler: 'stabilityai--stable-diffusion-2-1', imageSize: 768 },
  'sd21-base': {
    unet: 'sd21-unet',
    text: 'sd21-text',
    scheduler: 'stabilityai--stable-diffusion-2-1-base',
    imageSize: 512,
  },
};

// --- names and shapes ---------------------------------------------------------------------

/** The reference key list of a real model (state_dict order). */
function referenceKeys(stem: string): KeyEntry[] {
  return (readRef(`keys/${stem}.keys.json`).keys as KeyEntry[]).map((k) => ({ name: k.name, shape: [...k.shape] }));
}

/** Names and shapes the model code asks for under a (possibly reduced) config. */
function recordedKeys(run: (p: Params<{ shape: readonly number[] }>, ops: ShapeOps) => void): KeyEntry[] {
  const rec = new ParamRecorder();
  run(new Params(rec), new ShapeOps());
  return [...rec.requested].map(([name, shape]) => ({ name, shape }));
}

function unetKeys(config: UNetConfig, stem: string, reduced: boolean): KeyEntry[] {
  if (!reduced) return referenceKeys(stem);
  const c = resolveUNetConfig(config);
  const s = c.sample_size;
  return recordedKeys((p, ops) =>
    unet(ops, p, c, {
      sample: { shape: [1, c.in_channels, s, s] },
      timesteps: { shape: [1] },
      cond: { context: { shape: [1, 77, c.cross_attention_dim] }, lora: null, dual: null },
    }),
  );
}

function vaeKeys(config: VaeConfig, reduced: boolean): KeyEntry[] {
  if (!reduced) return referenceKeys('sd-vae');
  const c = checkVaeConfig(config);
  const f = 2 ** (c.block_out_channels.length - 1);
  return recordedKeys((p, ops) => {
    vaeEncode(ops, p, c, { shape: [1, c.in_channels, 8 * f, 8 * f] });
    vaeDecode(ops, p, c, { shape: [1, c.latent_channels, 8, 8] });
  });
}

function textKeys(config: ClipTextConfig, stem: string, reduced: boolean): KeyEntry[] {
  if (!reduced) return referenceKeys(stem);
  return recordedKeys((p, ops) =>
    clipText(ops, p, config, clipTokenEmbeddings(ops, p, config, { shape: [1, 77] }), { shape: [1, 77] }),
  );
}

function visionKeys(config: ClipVisionConfig, reduced: boolean): KeyEntry[] {
  if (!reduced) return referenceKeys('clip-vit-large-patch14-vision-with-projection');
  return recordedKeys((p, ops) =>
    clipVision(ops, p, config, { shape: [1, config.num_channels, config.image_size, config.image_size] }),
  );
}

// --- values --------------------------------------------------------------------------------

/** FNV-1a of the name, mixed with the seed: each tensor has its own stream. */
function tensorSeed(name: string, seed: number): number {
  let h = 0x811c9dc5 ^ Math.imul(seed + 1, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * xorshift32 → uniform on [−√3·std, √3·std] (variance std²). Uniform rather than normal
 * because it is ~10× cheaper and the SD 1.5 UNet alone has 860 M values; only the scale
 * matters for keeping activations finite.
 */
function uniformStream(seed: number): (out: Float32Array, std: number) => void {
  let x = seed | 0 || 0x2545f491;
  return (out, std) => {
    const k = (Math.sqrt(3) * std) / 2147483648;
    for (let i = 0; i < out.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x * k;
    }
  };
}

// float32 → float16 by the base/shift tables of van der Zijp ("Fast Half Float
// Conversions"): truncates the mantissa instead of rounding, which is immaterial for random
// values and ~5× faster than a per-element round-to-nearest.
const F16_BASE = new Uint16Array(512);
const F16_SHIFT = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const e = i - 127;
  let base: number;
  let shift: number;
  if (e < -24) [base, shift] = [0, 24];
  else if (e < -14) [base, shift] = [0x0400 >> (-e - 14), -e - 1];
  else if (e <= 15) [base, shift] = [(e + 15) << 10, 13];
  else if (e < 128) [base, shift] = [0x7c00, 24];
  else [base, shift] = [0x7c00, 13];
  F16_BASE[i] = base;
  F16_BASE[i | 0x100] = base | 0x8000;
  F16_SHIFT[i] = shift;
  F16_SHIFT[i | 0x100] = shift;
}

function toF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i];
    const j = f >>> 23;
    dst[i] = F16_BASE[j] + ((f & 0x007fffff) >>> F16_SHIFT[j]);
  }
}

/**
 * One tensor's seeded values by `initRule` (the stream synthetic folders use), for tools that
 * build a single model part in memory instead of writing a folder (bench/*-memory.ts).
 */
export function syntheticTensor(name: string, shape: readonly number[], seed: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const rule = initRule(name, shape);
  if ('constant' in rule) return out.fill(rule.constant);
  uniformStream(seed)(out, rule.std);
  return out;
}

const NORM_NAME =
  /(^|\.)(norm\d?|norm_out|conv_norm_out|group_norm|layer_norm\d|final_layer_norm|pre_layrnorm|post_layernorm)\.(weight|bias)$/;
const EMBEDDING_TABLE = /embeddings\.(token_embedding|position_embedding)\.weight$|embeddings\.class_embedding$/;

/** How a tensor is initialised: a constant, or normals with a standard deviation. */
export function initRule(name: string, shape: readonly number[]): { constant: number } | { std: number } {
  if (NORM_NAME.test(name)) return { constant: name.endsWith('.weight') ? 1 : 0 };
  if (EMBEDDING_TABLE.test(name)) return { std: 0.02 };
  if (name.endsWith('.bias') || shape.length === 1) return { std: 0.02 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { std: 1 / Math.sqrt(fanIn) };
}

// --- streaming safetensors writer ------------------------------------------------------------

const CHUNK = 1 << 20;

/**
 * Writes `keys` as one safetensors file, tensors sorted by name (as the Python/Rust writer
 * orders a single-dtype file), generating each tensor's values chunk by chunk.
 */
export function writeRandomSafetensors(
  path: string,
  keys: readonly KeyEntry[],
  dtype: 'fp32' | 'fp16',
  seed: number,
): { parameters: number; bytes: number } {
  const st = dtype === 'fp32' ? 'F32' : 'F16';
  const size = dtype === 'fp32' ? 4 : 2;
  const sorted = [...keys].sort((a, b) => compareCodePoints(a.name, b.name));
  const parts = ['"__metadata__":{"format":"pt"}'];
  let offset = 0;
  let parameters = 0;
  for (const k of sorted) {
    const n = k.shape.reduce((a, b) => a * b, 1);
    parts.push(
      `${JSON.stringify(k.name)}:{"dtype":"${st}","shape":[${k.shape.join(',')}],"data_offsets":[${offset},${offset + n * size}]}`,
    );
    offset += n * size;
    parameters += n;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setUint32(0, headerLength, true);
  head.set(json, 8);

  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    const values = new Float32Array(CHUNK);
    const half = new Uint16Array(CHUNK);
    for (const part of sorted.flatMap((k) => k.from ?? [k])) {
      const n = part.shape.reduce((a, b) => a * b, 1);
      const rule = initRule(part.name, part.shape);
      const fill = 'std' in rule ? uniformStream(tensorSeed(part.name, seed)) : null;
      for (let done = 0; done < n; done += CHUNK) {
        const m = Math.min(CHUNK, n - done);
        const v = values.subarray(0, m);
        if (fill && 'std' in rule) fill(v, rule.std);
        else v.fill((rule as { constant: number }).constant);
        if (dtype === 'fp32') {
          writeSync(fd, new Uint8Array(v.buffer, 0, m * 4));
        } else {
          toF16(v, half);
          writeSync(fd, new Uint8Array(half.buffer, 0, m * 2));
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return { parameters, bytes: 8 + headerLength + offset };
}

// --- the folder ------------------------------------------------------------------------------

/** The OpenAI CLIP BPE files as diffusers ships them (tiny-sd carries the real vocabulary). */
function tokenizerSource(): URL {
  const dir = refPath('tiny-sd/tokenizer/');
  if (!existsSync(new URL('merges.txt', dir)) || !existsSync(new URL('vocab.json', dir))) {
    throw new Error(
      'synthetic-sd: no CLIP tokenizer files (vocab.json + merges.txt) under ../shared/data/reference/tiny-sd/tokenizer',
    );
  }
  return dir;
}

function positiveInt(v: number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1) throw new Error(`synthetic-sd: ${what} must be a positive integer, got ${v}`);
  return v;
}

export interface SyntheticComponent {
  dir: 'unet' | 'vae' | 'text_encoder' | 'image_encoder';
  file: string;
  config: Record<string, unknown>;
  keys: KeyEntry[];
}

export interface SyntheticSdPlan {
  components: SyntheticComponent[];
  scheduler: Record<string, unknown>;
  dtype: 'fp32' | 'fp16';
  seed: number;
}

/** Configs and key lists of the folder `writeSyntheticSd` would write (nothing written). */
export function planSyntheticSd(o: Omit<SyntheticSdOptions, 'out' | 'log'>): SyntheticSdPlan {
  const variant = o.variant ?? 'sd15';
  const v = VARIANTS[variant];
  if (!v) throw new Error(`synthetic-sd: unknown variant ${JSON.stringify(variant)} (sd15, sd21, sd21-base)`);
  const dtype = o.dtype ?? 'fp32';
  if (dtype !== 'fp32' && dtype !== 'fp16')
    throw new Error(`synthetic-sd: dtype must be fp32 or fp16, got ${JSON.stringify(dtype)}`);
  const seed = o.seed ?? 0;
  const imageSize = o.imageSize ?? v.imageSize;
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize % 8 !== 0) {
    throw new Error(
      `synthetic-sd: imageSize must be a positive multiple of 8 (the VAE downsamples ×8), got ${imageSize}`,
    );
  }
  const visionImageSize = positiveInt(o.visionImageSize, 'visionImageSize');
  if (visionImageSize !== undefined && visionImageSize % 14 !== 0) {
    throw new Error(`synthetic-sd: visionImageSize must be a multiple of the 14-pixel patch, got ${visionImageSize}`);
  }

  // configs: the real ones, with only the asked-for changes
  const unetCfg = { ...readRef(`keys/${v.unet}.config.json`), sample_size: imageSize / 8 };
  const vaeCfg = { ...readRef('keys/sd-vae.config.json'), sample_size: imageSize };
  const textCfg = readRef(`keys/${v.text}.config.json`);
  const visionCfg = readRef('keys/clip-vit-large-patch14-vision-with-projection.config.json');
  const unetLayers = positiveInt(o.unetLayersPerBlock, 'unetLayersPerBlock');
  const vaeLayers = positiveInt(o.vaeLayersPerBlock, 'vaeLayersPerBlock');
  const textLayers = positiveInt(o.textLayers, 'textLayers');
  const visionLayers = positiveInt(o.visionLayers, 'visionLayers');
  const reducedUnet = unetLayers !== undefined && unetLayers !== unetCfg.layers_per_block;
  const reducedVae = vaeLayers !== undefined && vaeLayers !== vaeCfg.layers_per_block;
  const reducedText = textLayers !== undefined && textLayers !== textCfg.num_hidden_layers;
  const reducedVision =
    (visionLayers !== undefined && visionLayers !== visionCfg.num_hidden_layers) ||
    (visionImageSize !== undefined && visionImageSize !== visionCfg.image_size);
  if (unetLayers !== undefined) unetCfg.layers_per_block = unetLayers;
  if (vaeLayers !== undefined) vaeCfg.layers_per_block = vaeLayers;
  if (textLayers !== undefined) textCfg.num_hidden_layers = textLayers;
  if (visionLayers !== undefined) visionCfg.num_hidden_layers = visionLayers;
  if (visionImageSize !== undefined) visionCfg.image_size = visionImageSize;
  const torchDtype = dtype === 'fp32' ? 'float32' : 'float16';
  textCfg.torch_dtype = torchDtype;
  visionCfg.torch_dtype = torchDtype;

  return {
    components: [
      {
        dir: 'unet',
        file: 'diffusion_pytorch_model.safetensors',
        config: unetCfg,
        keys: unetKeys(unetCfg, v.unet, reducedUnet),
      },
      { dir: 'vae', file: 'diffusion_pytorch_model.safetensors', config: vaeCfg, keys: vaeKeys(vaeCfg, reducedVae) },
      { dir: 'text_encoder', file: 'model.safetensors', config: textCfg, keys: textKeys(textCfg, v.text, reducedText) },
      {
        dir: 'image_encoder',
        file: 'model.safetensors',
        config: visionCfg,
        keys: visionKeys(visionCfg, reducedVision),
      },
    ],
    scheduler: readRef(`single-file/schedulers/${v.scheduler}.scheduler_config.json`),
    dtype,
    seed,
  };
}

export function writeSyntheticSd(o: SyntheticSdOptions): SyntheticSdSummary {
  const plan = planSyntheticSd(o);
  const { dtype, seed } = plan;
  const log = o.log ?? (() => {});
  const components: SyntheticSdSummary['components'] = {};
  const writeComponent = (dir: string, file: string, config: object, keys: KeyEntry[]) => {
    mkdirSync(join(o.out, dir), { recursive: true });
    writeFileSync(join(o.out, dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    const t0 = performance.now();
    const r = writeRandomSafetensors(join(o.out, dir, file), keys, dtype, seed);
    components[dir] = { tensors: keys.length, ...r };
    log(
      `  ${dir}/${file}: ${keys.length} tensors, ${(r.parameters / 1e6).toFixed(1)} M parameters, ${(r.bytes / 1e6).toFixed(0)} MB (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  };

  log(`synthetic ${o.variant ?? 'sd15'} (${dtype}, ${o.imageSize ?? 'default'} px) → ${o.out}`);
  for (const c of plan.components) writeComponent(c.dir, c.file, c.config, c.keys);

  const tok = tokenizerSource();
  mkdirSync(join(o.out, 'tokenizer'), { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json'])
    copyFileSync(new URL(f, tok), join(o.out, 'tokenizer', f));

  const scheduler = plan.scheduler;
  mkdirSync(join(o.out, 'scheduler'), { recursive: true });
  writeFileSync(join(o.out, 'scheduler', 'scheduler_config.json'), JSON.stringify(scheduler, null, 2) + '\n');

  const modelIndex = {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.40.0.dev0',
    feature_extractor: [null, null],
    image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', scheduler._class_name],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  };
  writeFileSync(join(o.out, 'model_index.json'), JSON.stringify(modelIndex, null, 2) + '\n');
  return { out: o.out, components };
}
