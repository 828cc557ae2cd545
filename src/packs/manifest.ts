// The model pack manifest (`manifest.json`, format "likeness-pack/1"): what a pack contains,
// how its networks are shaped, and how to check every byte of it.
//
// The architecture configs are the diffusers / transformers `config.json` objects carried
// verbatim (snake_case field names, extra fields kept), so `likeness pack --from <diffusers
// folder>` copies them and the models read the same names diffusers does. The manifest's own
// fields are camelCase. `validateManifest` reports every defect at once, each with its JSON
// path (`files[2].sha256: expected 64 lowercase hex chars`), so a pack author fixes them in
// one round.
import { SAMPLERS, type SamplerName } from '../domain/samplers.ts';
import { LORA_ALPHA, LORA_MAX_SCALE, LORA_RANK, MANIFEST_LIMITS as L, MAX_LISTED_PROBLEMS, VOCAB_SIZE, type Range } from '../domain/limits.ts';
import { sha256Hex } from './sha256.ts';
import { JsonSyntaxError, jsonToPlain, parseStrictJson } from './strict-json.ts';

export const PACK_FORMAT = 'likeness-pack/1';

/** transformers `CLIPTextConfig` (text_encoder/config.json). */
export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: 'quick_gelu' | 'gelu';
  layer_norm_eps: number;
  projection_dim?: number;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number;
  [field: string]: unknown;
}

/** transformers `CLIPVisionConfig` (image_encoder/config.json of CLIPVisionModelWithProjection). */
export interface ClipVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  projection_dim: number;
  hidden_act: 'quick_gelu' | 'gelu';
  layer_norm_eps: number;
  [field: string]: unknown;
}

export type UNetDownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UNetUpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** diffusers `UNet2DConditionModel` config (unet/config.json). */
export interface UNet2DConditionConfig {
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
  center_input_sample?: boolean;
  [field: string]: unknown;
}

/** diffusers `AutoencoderKL` config (vae/config.json). */
export interface AutoencoderKLConfig {
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
  scaling_factor?: number;
  shift_factor?: number | null;
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
  mid_block_add_attention?: boolean;
  [field: string]: unknown;
}

/** diffusers scheduler config (scheduler/scheduler_config.json); the samplers all read it. */
export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  prediction_type: 'epsilon' | 'v_prediction' | 'sample';
  trained_betas?: number[] | null;
  set_alpha_to_one?: boolean;
  steps_offset?: number;
  clip_sample?: boolean;
  clip_sample_range?: number;
  timestep_spacing?: 'leading' | 'trailing' | 'linspace';
  rescale_betas_zero_snr?: boolean;
  [field: string]: unknown;
}

/**
 * The tuning encoder's config, written by the training code and carried verbatim; the pack
 * format only requires it to name its class. Its fields belong to src/models.
 */
export interface TuningEncoderConfig {
  _class_name: string;
  [field: string]: unknown;
}

export const LORA_MODULES = ['to_q', 'to_k', 'to_v', 'to_out.0'] as const;

export interface LoraConfig {
  rank: number;
  /** ΔW is scaled by alpha / rank. */
  alpha: number;
  /**
   * Attention projections that carry LoRA, as PEFT target names: 'to_q', 'to_k', 'to_v',
   * 'to_out.0' (in attn1 and attn2), or restricted to one attention: 'attn2.to_k'.
   */
  targets: string[];
}

export interface PackArchitecture {
  textEncoder: ClipTextConfig;
  unet: UNet2DConditionConfig;
  vae: AutoencoderKLConfig;
  imageEncoder: ClipVisionConfig;
  /** Absent in a pack without a trained encoder (then personalization starts from zero LoRA). */
  tuningEncoder?: TuningEncoderConfig;
  lora: LoraConfig;
}


export interface GenerationDefaults {
  steps: number;
  guidanceScale: number;
  sampler: SamplerName;
  /** α of the dual path, in [0, 1]. */
  blend: number;
  negativePrompt: string;
  batchSize: number;
  /** The placeholder word users write in prompts, e.g. "S*". */
  placeholder: string;
  tuningSteps: number;
  tuningLearningRate: number;
  /** How many nearest vocabulary words to show for a concept. */
  nearestWords: number;
}

export type ComponentName = 'text_encoder' | 'unet' | 'vae' | 'image_encoder' | 'tuning_encoder';
export const COMPONENTS: readonly ComponentName[] = ['text_encoder', 'unet', 'vae', 'image_encoder', 'tuning_encoder'];

/** weights: safetensors; onnx: a graph whose initializers point into weights files. */
export type FileRole = 'weights' | 'onnx' | 'tokenizer' | 'licence' | 'other';
export const FILE_ROLES: readonly FileRole[] = ['weights', 'onnx', 'tokenizer', 'licence', 'other'];

export interface PackFile {
  /** Relative POSIX path inside the pack (also its URL path below the pack URL). */
  path: string;
  role: FileRole;
  /** Required for weights and onnx. */
  component?: ComponentName;
  /** onnx only: which graph, e.g. "unet", "vae_decoder", "vae_encoder". */
  graph?: string;
  /** onnx only: the weights files (paths in this pack) its external data points into. */
  externalData?: string[];
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
}

export interface TokenizerRef {
  type: 'clip-bpe';
  /** BPE merges (merges.txt, or OpenAI's bpe_simple_vocab_16e6.txt[.gz]): a file of role tokenizer. */
  merges: string;
  /** vocab.json, when the pack ships one (else derived from the merges as CLIP does). */
  vocab?: string;
  /** Sequence length the text encoder sees (77). */
  maxLength: number;
  /** "<|endoftext|>" for SD 1.x, "!" for SD 2.x. */
  padToken: string;
}

export interface PackLicence {
  /** SPDX identifier or licence name, e.g. "CreativeML-OpenRAIL-M", "Apache-2.0". */
  id: string;
  url?: string;
  /** Path of a file of role licence holding the full text. */
  file?: string;
  notice?: string;
}

export interface Manifest {
  format: typeof PACK_FORMAT;
  name: string;
  version?: string;
  description?: string;
  licence: PackLicence;
  architecture: PackArchitecture;
  imageSize: number;
  latentSize: number;
  vaeScalingFactor: number;
  scheduler: SchedulerConfig;
  defaults: GenerationDefaults;
  tokenizer: TokenizerRef;
  files: PackFile[];
}

export interface ManifestIssue {
  path: string;
  message: string;
}

export class ManifestError extends Error {
  constructor(readonly issues: readonly ManifestIssue[]) {
    super(
      `invalid pack manifest (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues
          .slice(0, MAX_LISTED_PROBLEMS)
          .map((i) => `  ${i.path || '(root)'}: ${i.message}`)
          .join('\n') +
        (issues.length > MAX_LISTED_PROBLEMS ? `\n  … and ${issues.length - MAX_LISTED_PROBLEMS} more` : ''),
    );
    this.name = 'ManifestError';
  }
}

type Obj = Record<string, unknown>;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (path: string, k: string) => (IDENT.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`);
const idx = (path: string, i: number) => `${path}[${i}]`;

function kind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return `${v}`;
  if (typeof v === 'string') return v.length > 40 ? `a string` : JSON.stringify(v);
  return `a ${typeof v}`;
}

/** Collects issues; the field readers return undefined where the value was bad or missing. */
class Checker {
  readonly issues: ManifestIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  object(v: unknown, path: string): Obj | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.add(path, `expected an object, got ${kind(v)}`);
      return undefined;
    }
    return v as Obj;
  }

  /** Flags fields outside `allowed` (our own objects are closed; typos should not pass). */
  closed(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.add(key(path, k), 'unknown field');
  }

  private present(o: Obj, k: string, path: string, optional: boolean): boolean {
    if (!Object.hasOwn(o, k) || o[k] === undefined) {
      if (!optional) this.add(key(path, k), 'required');
      return false;
    }
    return true;
  }

  str(o: Obj, k: string, path: string, opts: { optional?: boolean; oneOf?: readonly string[]; nonEmpty?: boolean } = {}): string | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    const v = o[k];
    const p = key(path, k);
    if (typeof v !== 'string') return void this.add(p, `expected a string, got ${kind(v)}`);
    if (opts.oneOf && !opts.oneOf.includes(v)) return void this.add(p, `expected one of ${opts.oneOf.map((s) => JSON.stringify(s)).join(', ')}, got ${kind(v)}`);
    if ((opts.nonEmpty ?? true) && v.trim() === '') return void this.add(p, 'must not be empty');
    return v;
  }

  num(o: Obj, k: string, path: string, opts: NumOpts = {}): number | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    return this.numValue(o[k], key(path, k), opts);
  }

  numValue(v: unknown, p: string, opts: NumOpts = {}): number | undefined {
    const what = opts.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v)) return void this.add(p, `expected ${what}, got ${kind(v)}`);
    if (opts.integer && !Number.isSafeInteger(v)) return void this.add(p, `expected ${what}, got ${v}`);
    if (opts.min !== undefined && v < opts.min) return void this.add(p, `expected ${what} ≥ ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) return void this.add(p, `expected ${what} ≤ ${opts.max}, got ${v}`);
    if (opts.above !== undefined && !(v > opts.above)) return void this.add(p, `expected ${what} > ${opts.above}, got ${v}`);
    return v;
  }

  bool(o: Obj, k: string, path: string, optional = true): boolean | undefined {
    if (!this.present(o, k, path, optional)) return undefined;
    const v = o[k];
    if (typeof v !== 'boolean') return void this.add(key(path, k), `expected true or false, got ${kind(v)}`);
    return v;
  }

  array(o: Obj, k: string, path: string, optional = false): unknown[] | undefined {
    if (!this.present(o, k, path, optional)) return undefined;
    const v = o[k];
    if (!Array.isArray(v)) return void this.add(key(path, k), `expected an array, got ${kind(v)}`);
    return v;
  }

  /** A non-empty array of numbers meeting `opts`; reports each bad element by index. */
  numArray(o: Obj, k: string, path: string, opts: NumOpts & { optional?: boolean; nonEmpty?: boolean } = {}): number[] | undefined {
    const a = this.array(o, k, path, opts.optional);
    if (!a) return undefined;
    const p = key(path, k);
    if ((opts.nonEmpty ?? true) && a.length === 0) return void this.add(p, 'must not be empty');
    const out = a.map((v, i) => this.numValue(v, idx(p, i), opts));
    return out.every((v) => v !== undefined) ? out : undefined;
  }

  /** diffusers' "int or per-block list" fields. Returns the per-block list. */
  perBlock(o: Obj, k: string, path: string, blocks: number | undefined, opts: NumOpts & { optional?: boolean }): number[] | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    const v = o[k];
    const p = key(path, k);
    if (Array.isArray(v)) {
      const list = this.numArray(o, k, path, opts);
      if (list && blocks !== undefined && list.length !== blocks) {
        this.add(p, `expected one entry per block (${blocks}), got ${list.length}`);
        return undefined;
      }
      return list;
    }
    const n = this.numValue(v, p, opts);
    return n === undefined || blocks === undefined ? undefined : new Array<number>(blocks).fill(n);
  }
}

interface NumOpts {
  integer?: boolean;
  min?: number;
  max?: number;
  /** Strictly greater than. */
  above?: number;
  optional?: boolean;
}

const NONNEG_INT: NumOpts = { integer: true, min: 0 };
/** A documented bound of ../limits.ts as reader options. */
const R = (r: Range, optional = false): NumOpts => ({ integer: r.integer, min: r.min, above: r.above, max: r.max, optional });
const SHA256_RE = /^[0-9a-f]{64}$/;

/** Problems with a pack-relative path, or null. Paths become URLs and cache names: keep them plain. */
export function packPathProblem(p: string): string | null {
  if (p === '') return 'must not be empty';
  if (p.length > 255) return 'longer than 255 characters';
  if (p.startsWith('/')) return 'must be relative (no leading "/")';
  if (p.includes('\\')) return 'must use "/" as separator';
  if (!/^[A-Za-z0-9._\-/]+$/.test(p)) return 'may only contain letters, digits, ".", "_", "-" and "/"';
  for (const seg of p.split('/')) {
    if (seg === '') return 'has an empty path segment';
    if (seg === '.' || seg === '..') return `may not contain a "${seg}" segment`;
  }
  return null;
}

/** Validates a parsed manifest; throws ManifestError listing every problem. */
export function validateManifest(json: unknown): Manifest {
  const c = new Checker();
  const root = c.object(json, '');
  if (!root) throw new ManifestError(c.issues);
  c.closed(root, '', [
    'format', 'name', 'version', 'description', 'licence', 'architecture', 'imageSize', 'latentSize',
    'vaeScalingFactor', 'scheduler', 'defaults', 'tokenizer', 'files',
  ]);

  const format = c.str(root, 'format', '');
  if (format !== undefined && format !== PACK_FORMAT) {
    c.add('format', `expected "${PACK_FORMAT}", got ${kind(format)}${format.startsWith('likeness-pack/') ? ' (a newer pack format: update the app)' : ''}`);
  }
  c.str(root, 'name', '');
  c.str(root, 'version', '', { optional: true });
  c.str(root, 'description', '', { optional: true, nonEmpty: false });

  // files first: other sections refer to them.
  const files = checkFiles(c, root);

  const licence = c.object(root.licence, 'licence');
  if (licence) {
    c.closed(licence, 'licence', ['id', 'url', 'file', 'notice']);
    c.str(licence, 'id', 'licence');
    c.str(licence, 'url', 'licence', { optional: true });
    c.str(licence, 'notice', 'licence', { optional: true, nonEmpty: false });
    const file = c.str(licence, 'file', 'licence', { optional: true });
    if (file !== undefined) expectFile(c, files, file, 'licence.file', 'licence');
  }

  const imageSize = c.num(root, 'imageSize', '', R(L.imageSize));
  const latentSize = c.num(root, 'latentSize', '', R(L.latentSize));
  const vaeScalingFactor = c.num(root, 'vaeScalingFactor', '', R(L.vaeScalingFactor));

  const arch = root.architecture === undefined ? (c.add('architecture', 'required'), undefined) : c.object(root.architecture, 'architecture');
  let text: { hidden?: number; maxPositions?: number } = {};
  let latentChannels: number | undefined;
  let vaeFactor: number | undefined;
  let hasTuningEncoder = false;
  if (arch) {
    c.closed(arch, 'architecture', ['textEncoder', 'unet', 'vae', 'imageEncoder', 'tuningEncoder', 'lora']);
    text = checkTextEncoder(c, arch);
    checkImageEncoder(c, arch);
    const vae = checkVae(c, arch, vaeScalingFactor);
    latentChannels = vae.latentChannels;
    vaeFactor = vae.downsampleFactor;
    checkUnet(c, arch, text.hidden, latentChannels);
    if (arch.tuningEncoder !== undefined) {
      hasTuningEncoder = true;
      const te = c.object(arch.tuningEncoder, 'architecture.tuningEncoder');
      if (te) c.str(te, '_class_name', 'architecture.tuningEncoder');
    }
    checkLora(c, arch);
  }
  if (imageSize !== undefined && latentSize !== undefined && vaeFactor !== undefined && imageSize !== latentSize * vaeFactor) {
    c.add('latentSize', `imageSize ${imageSize} / latentSize ${latentSize} must equal the VAE's downsampling factor ${vaeFactor}`);
  }

  const steps = checkScheduler(c, root);
  checkDefaults(c, root, steps);
  checkTokenizer(c, root, files, text.maxPositions);

  if (files && arch) {
    const weights = new Set(files.filter((f) => f.role === 'weights').map((f) => f.component));
    for (const comp of COMPONENTS) {
      const needed = comp === 'tuning_encoder' ? hasTuningEncoder : true;
      if (needed && !weights.has(comp)) c.add('files', `no weights file for component "${comp}"`);
      if (!needed && weights.has(comp)) c.add('files', `weights for "tuning_encoder" but no architecture.tuningEncoder config`);
    }
  }

  if (c.issues.length) throw new ManifestError(c.issues);
  return json as Manifest;
}

/**
 * Parses manifest.json as stored: UTF-8 (invalid bytes are an error, not replaced, so every
 * loader reads the same manifest), then parseManifest.
 */
export function parseManifestBytes(bytes: Uint8Array): Manifest {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ManifestError([{ path: '', message: 'not valid UTF-8 text (the file is damaged or not a manifest)' }]);
  }
  return parseManifest(text);
}

/** Parses manifest.json text strictly (duplicate keys are an error) and validates it. */
export function parseManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = jsonToPlain(parseStrictJson(text));
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new ManifestError([{ path: '', message: `not valid JSON: ${e.message}` }]);
    throw e;
  }
  return validateManifest(value);
}

interface FileSummary {
  path: string;
  role?: FileRole;
  component?: ComponentName;
}

function checkFiles(c: Checker, root: Obj): FileSummary[] | undefined {
  const list = c.array(root, 'files', '');
  if (!list) return undefined;
  if (list.length === 0) c.add('files', 'must not be empty');
  if (list.length > L.files.max) {
    c.add('files', `${list.length} entries, more than the ${L.files.max} a pack may have`);
    return undefined;
  }
  const out: FileSummary[] = [];
  const seen = new Map<string, number>();
  const pending: { p: string; i: number; refs: unknown }[] = [];
  list.forEach((v, i) => {
    const p = idx('files', i);
    const f = c.object(v, p);
    if (!f) return;
    c.closed(f, p, ['path', 'role', 'component', 'graph', 'externalData', 'bytes', 'sha256']);
    const path = c.str(f, 'path', p);
    if (path !== undefined) {
      const problem = packPathProblem(path);
      if (problem) c.add(key(p, 'path'), problem);
      const lower = path.toLowerCase();
      if (seen.has(lower)) c.add(key(p, 'path'), `same path as files[${seen.get(lower)}] (paths must differ in more than case)`);
      else seen.set(lower, i);
    }
    const role = c.str(f, 'role', p, { oneOf: FILE_ROLES }) as FileRole | undefined;
    const needsComponent = role === 'weights' || role === 'onnx';
    let component: ComponentName | undefined;
    if (needsComponent) component = c.str(f, 'component', p, { oneOf: COMPONENTS }) as ComponentName | undefined;
    else if (role !== undefined && f.component !== undefined) c.add(key(p, 'component'), `only weights and onnx files have a component`);
    if (role === 'onnx') {
      c.str(f, 'graph', p, { optional: true });
      if (f.externalData !== undefined) pending.push({ p: key(p, 'externalData'), i, refs: f.externalData });
    } else if (role !== undefined) {
      if (f.graph !== undefined) c.add(key(p, 'graph'), 'only onnx files have a graph');
      if (f.externalData !== undefined) c.add(key(p, 'externalData'), 'only onnx files have external data');
    }
    if (path !== undefined && role === 'weights' && !path.endsWith('.safetensors')) c.add(key(p, 'path'), 'weights must be a .safetensors file');
    if (path !== undefined && role === 'onnx' && !path.endsWith('.onnx')) c.add(key(p, 'path'), 'an onnx graph must be a .onnx file');
    c.num(f, 'bytes', p, R(L.fileBytes));
    if (Object.hasOwn(f, 'sha256')) {
      const h = f.sha256;
      if (typeof h !== 'string' || !SHA256_RE.test(h)) {
        c.add(key(p, 'sha256'), `expected 64 lowercase hex chars, got ${typeof h === 'string' ? `${h.length} chars${/^[0-9A-F]{64}$/i.test(h) ? ' (uppercase)' : ''}` : kind(h)}`);
      }
    } else c.add(key(p, 'sha256'), 'required');
    if (path !== undefined) out.push({ path, role, component });
  });
  const weightsPaths = new Set(out.filter((f) => f.role === 'weights').map((f) => f.path));
  for (const { p, refs } of pending) {
    if (!Array.isArray(refs) || refs.length === 0) {
      c.add(p, `expected a non-empty array of weights file paths, got ${kind(refs)}`);
      continue;
    }
    refs.forEach((r, j) => {
      if (typeof r !== 'string') c.add(idx(p, j), `expected a path, got ${kind(r)}`);
      else if (!weightsPaths.has(r)) c.add(idx(p, j), `${JSON.stringify(r)} is not a weights file of this pack`);
    });
  }
  return out;
}

function expectFile(c: Checker, files: FileSummary[] | undefined, path: string, at: string, role: FileRole): void {
  if (!files) return;
  const f = files.find((x) => x.path === path);
  if (!f) c.add(at, `${JSON.stringify(path)} is not in files`);
  else if (f.role !== undefined && f.role !== role) c.add(at, `${JSON.stringify(path)} has role "${f.role}", expected "${role}"`);
}

function checkTextEncoder(c: Checker, arch: Obj): { hidden?: number; maxPositions?: number } {
  const p = 'architecture.textEncoder';
  if (arch.textEncoder === undefined) {
    c.add(p, 'required');
    return {};
  }
  const t = c.object(arch.textEncoder, p);
  if (!t) return {};
  const vocab = c.num(t, 'vocab_size', p, R(VOCAB_SIZE));
  const hidden = c.num(t, 'hidden_size', p, R(L.width));
  c.num(t, 'intermediate_size', p, R(L.mlpWidth));
  c.num(t, 'num_hidden_layers', p, R(L.layers));
  const heads = c.num(t, 'num_attention_heads', p, R(L.heads));
  const maxPositions = c.num(t, 'max_position_embeddings', p, R(L.maxPositions));
  c.str(t, 'hidden_act', p, { oneOf: ['quick_gelu', 'gelu'] });
  c.num(t, 'layer_norm_eps', p, R(L.eps));
  c.num(t, 'projection_dim', p, R(L.width, true));
  for (const id of ['bos_token_id', 'eos_token_id', 'pad_token_id']) c.num(t, id, p, { ...NONNEG_INT, max: (vocab ?? VOCAB_SIZE.max) - 1, optional: true });
  if (hidden !== undefined && heads !== undefined && hidden % heads !== 0) {
    c.add(key(p, 'num_attention_heads'), `hidden_size ${hidden} is not divisible by ${heads} heads`);
  }
  return { hidden, maxPositions };
}

function checkImageEncoder(c: Checker, arch: Obj): void {
  const p = 'architecture.imageEncoder';
  if (arch.imageEncoder === undefined) return c.add(p, 'required');
  const v = c.object(arch.imageEncoder, p);
  if (!v) return;
  const hidden = c.num(v, 'hidden_size', p, R(L.width));
  c.num(v, 'intermediate_size', p, R(L.mlpWidth));
  c.num(v, 'num_hidden_layers', p, R(L.layers));
  const heads = c.num(v, 'num_attention_heads', p, R(L.heads));
  c.num(v, 'num_channels', p, R(L.imageChannels));
  const image = c.num(v, 'image_size', p, R(L.visionImageSize));
  const patch = c.num(v, 'patch_size', p, R(L.patchSize));
  c.num(v, 'projection_dim', p, R(L.width));
  c.str(v, 'hidden_act', p, { oneOf: ['quick_gelu', 'gelu'] });
  c.num(v, 'layer_norm_eps', p, R(L.eps));
  if (hidden !== undefined && heads !== undefined && hidden % heads !== 0) {
    c.add(key(p, 'num_attention_heads'), `hidden_size ${hidden} is not divisible by ${heads} heads`);
  }
  if (image !== undefined && patch !== undefined && image % patch !== 0) {
    c.add(key(p, 'patch_size'), `image_size ${image} is not a multiple of patch_size ${patch}`);
  }
}

function checkVae(c: Checker, arch: Obj, scaling: number | undefined): { latentChannels?: number; downsampleFactor?: number } {
  const p = 'architecture.vae';
  if (arch.vae === undefined) {
    c.add(p, 'required');
    return {};
  }
  const v = c.object(arch.vae, p);
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
  const sf = c.num(v, 'scaling_factor', p, R(L.vaeScalingFactor, true));
  if (sf !== undefined && scaling !== undefined && sf !== scaling) {
    c.add('vaeScalingFactor', `${scaling} differs from architecture.vae.scaling_factor ${sf}`);
  }
  if (v.shift_factor !== undefined && v.shift_factor !== null) c.num(v, 'shift_factor', p, { min: -100, max: 100 });
  for (const b of ['use_quant_conv', 'use_post_quant_conv', 'mid_block_add_attention', 'force_upcast']) c.bool(v, b, p);
  return { latentChannels, downsampleFactor: blocks === undefined ? undefined : 2 ** (blocks - 1) };
}

function checkUnet(c: Checker, arch: Obj, textHidden: number | undefined, latentChannels: number | undefined): void {
  const p = 'architecture.unet';
  if (arch.unet === undefined) return c.add(p, 'required');
  const u = c.object(arch.unet, p);
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
  c.perBlock(u, 'layers_per_block', p, blocks, R(L.layersPerBlock));
  c.perBlock(u, 'transformer_layers_per_block', p, blocks, R(L.transformerLayersPerBlock, true));
  const cross = c.perBlock(u, 'cross_attention_dim', p, blocks, R(L.width));
  if (cross && textHidden !== undefined && cross.some((d) => d !== textHidden)) {
    c.add(key(p, 'cross_attention_dim'), `must equal the text encoder's hidden_size ${textHidden}, got ${JSON.stringify(u.cross_attention_dim)}`);
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

function checkLora(c: Checker, arch: Obj): void {
  const p = 'architecture.lora';
  if (arch.lora === undefined) return c.add(p, 'required');
  const l = c.object(arch.lora, p);
  if (!l) return;
  c.closed(l, p, ['rank', 'alpha', 'targets']);
  const rank = c.num(l, 'rank', p, R(LORA_RANK));
  const alpha = c.num(l, 'alpha', p, R(LORA_ALPHA));
  if (rank !== undefined && alpha !== undefined && alpha / rank > LORA_MAX_SCALE) {
    c.add(key(p, 'alpha'), `alpha / rank = ${alpha / rank} is above ${LORA_MAX_SCALE}`);
  }
  const targets = c.array(l, 'targets', p);
  if (!targets) return;
  if (targets.length === 0) c.add(key(p, 'targets'), 'must not be empty');
  const re = new RegExp(`^(attn[12]\\.)?(${LORA_MODULES.map((m) => m.replace('.', '\\.')).join('|')})$`);
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    const at = idx(key(p, 'targets'), i);
    if (typeof t !== 'string' || !re.test(t)) c.add(at, `expected one of ${LORA_MODULES.map((m) => `"${m}"`).join(', ')}, optionally prefixed "attn1." or "attn2.", got ${kind(t)}`);
    else if (seen.has(t)) c.add(at, `duplicate target ${JSON.stringify(t)}`);
    else seen.add(t);
  });
}

function checkScheduler(c: Checker, root: Obj): number | undefined {
  const p = 'scheduler';
  if (root.scheduler === undefined) {
    c.add(p, 'required');
    return undefined;
  }
  const s = c.object(root.scheduler, p);
  if (!s) return undefined;
  const steps = c.num(s, 'num_train_timesteps', p, R(L.trainTimesteps));
  const start = c.num(s, 'beta_start', p, { above: 0, max: 1 });
  const end = c.num(s, 'beta_end', p, { above: 0, max: 1 });
  if (start !== undefined && end !== undefined && !(start < end)) c.add(key(p, 'beta_end'), `must exceed beta_start ${start}, got ${end}`);
  c.str(s, 'beta_schedule', p, { oneOf: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] });
  c.str(s, 'prediction_type', p, { oneOf: ['epsilon', 'v_prediction', 'sample'] });
  c.str(s, 'timestep_spacing', p, { optional: true, oneOf: ['leading', 'trailing', 'linspace'] });
  c.num(s, 'steps_offset', p, R(L.stepsOffset, true));
  c.num(s, 'clip_sample_range', p, R(L.clipSampleRange, true));
  for (const b of ['set_alpha_to_one', 'clip_sample', 'rescale_betas_zero_snr', 'thresholding']) c.bool(s, b, p);
  if (Array.isArray(s.trained_betas) && s.trained_betas.length > L.trainTimesteps.max) {
    c.add(key(p, 'trained_betas'), `${s.trained_betas.length} values, more than ${L.trainTimesteps.max}`);
  } else if (s.trained_betas !== undefined && s.trained_betas !== null) {
    const betas = c.numArray(s, 'trained_betas', p, { above: 0, max: 1 });
    if (betas && steps !== undefined && betas.length !== steps) c.add(key(p, 'trained_betas'), `expected ${steps} values (num_train_timesteps), got ${betas.length}`);
  }
  return steps;
}

function checkDefaults(c: Checker, root: Obj, trainSteps: number | undefined): void {
  const p = 'defaults';
  if (root.defaults === undefined) return c.add(p, 'required');
  const d = c.object(root.defaults, p);
  if (!d) return;
  c.closed(d, p, ['steps', 'guidanceScale', 'sampler', 'blend', 'negativePrompt', 'batchSize', 'placeholder', 'tuningSteps', 'tuningLearningRate', 'nearestWords']);
  c.num(d, 'steps', p, { ...R(L.steps), max: Math.min(trainSteps ?? L.steps.max, L.steps.max) });
  c.num(d, 'guidanceScale', p, R(L.guidanceScale));
  c.str(d, 'sampler', p, { oneOf: SAMPLERS });
  c.num(d, 'blend', p, { min: 0, max: 1 });
  c.str(d, 'negativePrompt', p, { nonEmpty: false });
  c.num(d, 'batchSize', p, R(L.batchSize));
  const ph = c.str(d, 'placeholder', p);
  if (ph !== undefined && /\s/.test(ph)) c.add(key(p, 'placeholder'), 'must be one word (no spaces)');
  if (ph !== undefined && ph.length > L.tokenChars.max) c.add(key(p, 'placeholder'), `longer than ${L.tokenChars.max} characters`);
  c.num(d, 'tuningSteps', p, R(L.tuningSteps));
  c.num(d, 'tuningLearningRate', p, R(L.tuningLearningRate));
  c.num(d, 'nearestWords', p, R(L.nearestWords));
}

function checkTokenizer(c: Checker, root: Obj, files: FileSummary[] | undefined, maxPositions: number | undefined): void {
  const p = 'tokenizer';
  if (root.tokenizer === undefined) return c.add(p, 'required');
  const t = c.object(root.tokenizer, p);
  if (!t) return;
  c.closed(t, p, ['type', 'merges', 'vocab', 'maxLength', 'padToken']);
  c.str(t, 'type', p, { oneOf: ['clip-bpe'] });
  const merges = c.str(t, 'merges', p);
  if (merges !== undefined) expectFile(c, files, merges, key(p, 'merges'), 'tokenizer');
  const vocab = c.str(t, 'vocab', p, { optional: true });
  if (vocab !== undefined) expectFile(c, files, vocab, key(p, 'vocab'), 'tokenizer');
  const max = c.num(t, 'maxLength', p, R(L.maxLength));
  if (max !== undefined && maxPositions !== undefined && max > maxPositions) {
    c.add(key(p, 'maxLength'), `${max} exceeds the text encoder's max_position_embeddings ${maxPositions}`);
  }
  // One token: checked against the vocabulary when the pack opens (pipeline/pack-runtime.ts).
  const pad = c.str(t, 'padToken', p);
  if (pad !== undefined && (pad.length > L.tokenChars.max || /\s/.test(pad))) {
    c.add(key(p, 'padToken'), `must be one token, like "<|endoftext|>" or "!", got ${kind(pad)}`);
  }
}

/** A per-block list with at most the documented number of blocks. */
function blockList(c: Checker, list: number[] | undefined, at: string): number[] | undefined {
  if (list && list.length > L.blocks.max) {
    c.add(at, `${list.length} blocks, more than ${L.blocks.max}`);
    return undefined;
  }
  return list;
}

/** Total bytes of the pack's files. */
export const packBytes = (m: Manifest): number => m.files.reduce((s, f) => s + f.bytes, 0);

/** LoRA scale alpha / rank. */
export const loraScale = (m: Manifest): number => m.architecture.lora.alpha / m.architecture.lora.rank;

/** A files[] entry for bytes about to be written into a pack (size and sha256 computed here). */
export function describePackFile(
  path: string,
  role: FileRole,
  bytes: Uint8Array,
  extra: Pick<PackFile, 'component' | 'graph' | 'externalData'> = {},
): PackFile {
  const problem = packPathProblem(path);
  if (problem) throw new Error(`pack file path ${JSON.stringify(path)}: ${problem}`);
  return { path, role, ...extra, bytes: bytes.length, sha256: sha256Hex(bytes) };
}
