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
import { LORA_ALPHA, LORA_MAX_SCALE, LORA_RANK, MANIFEST_LIMITS as L, MAX_LISTED_PROBLEMS } from '../domain/limits.ts';
import { sha256Hex } from './sha256.ts';
import { JsonSyntaxError, jsonToPlain, parseStrictJson } from './strict-json.ts';
import { PackError } from '../domain/errors.ts';
import { Checker, checked, idx, key, kind, R, type JsonIssue, type Obj } from '../domain/json-checker.ts';
import {
  checkClipTextConfig,
  checkClipVisionConfig,
  type ClipTextConfig,
  type ClipVisionConfig,
} from '../models/clip/clip-config.ts';
import { checkTuningEncoderConfig, type TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { checkUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { checkVaeConfigJson, type VaeConfig } from '../models/vae/vae-config.ts';

// The architecture configs are the models' own types, defined once in src/models.
export type { ClipTextConfig, ClipVisionConfig, TuningEncoderConfig, UNetConfig, VaeConfig };

export const PACK_FORMAT = 'likeness-pack/1';

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
  unet: UNetConfig;
  vae: VaeConfig;
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

export type ManifestIssue = JsonIssue;

export class ManifestError extends PackError {
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
    'format',
    'name',
    'version',
    'description',
    'licence',
    'architecture',
    'imageSize',
    'latentSize',
    'vaeScalingFactor',
    'scheduler',
    'defaults',
    'tokenizer',
    'files',
  ]);

  const format = c.str(root, 'format', '');
  if (format !== undefined && format !== PACK_FORMAT) {
    c.add(
      'format',
      `expected "${PACK_FORMAT}", got ${kind(format)}${format.startsWith('likeness-pack/') ? ' (a newer pack format: update the app)' : ''}`,
    );
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

  const arch =
    root.architecture === undefined
      ? (c.add('architecture', 'required'), undefined)
      : c.object(root.architecture, 'architecture');
  const { text, vaeFactor, vaeScaling, hasTuningEncoder } = arch
    ? checkArchitecture(c, arch)
    : ({ text: {} } as ArchitectureFacts);
  if (vaeScaling !== undefined && vaeScalingFactor !== undefined && vaeScaling !== vaeScalingFactor) {
    c.add('vaeScalingFactor', `${vaeScalingFactor} differs from architecture.vae.scaling_factor ${vaeScaling}`);
  }
  if (
    imageSize !== undefined &&
    latentSize !== undefined &&
    vaeFactor !== undefined &&
    imageSize !== latentSize * vaeFactor
  ) {
    c.add(
      'latentSize',
      `imageSize ${imageSize} / latentSize ${latentSize} must equal the VAE's downsampling factor ${vaeFactor}`,
    );
  }

  const steps = checkScheduler(c, root);
  checkDefaults(c, root, steps);
  checkTokenizer(c, root, files, text.maxPositions);

  if (files && arch) {
    const weights = new Set(files.filter((f) => f.role === 'weights').map((f) => f.component));
    for (const comp of COMPONENTS) {
      const needed = comp === 'tuning_encoder' ? hasTuningEncoder : true;
      if (needed && !weights.has(comp)) c.add('files', `no weights file for component "${comp}"`);
      if (!needed && weights.has(comp))
        c.add('files', `weights for "tuning_encoder" but no architecture.tuningEncoder config`);
    }
  }

  if (c.issues.length) throw new ManifestError(c.issues);
  return json as Manifest;
}

/** What the rest of the manifest is checked against. */
interface ArchitectureFacts {
  text: { hidden?: number; maxPositions?: number };
  vaeFactor?: number;
  vaeScaling?: number;
  hasTuningEncoder?: boolean;
}

/** Each config by its own check (src/models), then what the configs must agree on. */
function checkArchitecture(c: Checker, arch: Obj): ArchitectureFacts {
  const p = 'architecture';
  c.closed(arch, p, ['textEncoder', 'unet', 'vae', 'imageEncoder', 'tuningEncoder', 'lora']);
  const present = (k: string) => (arch[k] === undefined ? (c.add(key(p, k), 'required'), false) : true);
  const text = present('textEncoder') ? checkClipTextConfig(c, arch.textEncoder, key(p, 'textEncoder')) : {};
  if (present('imageEncoder')) checkClipVisionConfig(c, arch.imageEncoder, key(p, 'imageEncoder'));
  const vae = present('vae') ? checkVaeConfigJson(c, arch.vae, key(p, 'vae')) : {};
  if (present('unet'))
    checkUNetConfig(c, arch.unet, key(p, 'unet'), { textHidden: text.hidden, latentChannels: vae.latentChannels });
  const hasTuningEncoder = arch.tuningEncoder !== undefined;
  if (hasTuningEncoder) checkPackTuningEncoder(c, arch.tuningEncoder, key(p, 'tuningEncoder'));
  checkLora(c, arch);
  return { text, vaeFactor: vae.downsampleFactor, vaeScaling: vae.scalingFactor, hasTuningEncoder };
}

/** The pack format asks the tuning encoder's config to name its class; its fields are the model's. */
function checkPackTuningEncoder(c: Checker, json: unknown, p: string): void {
  const te = c.object(json, p);
  if (!te) return;
  c.str(te, '_class_name', p);
  checkTuningEncoderConfig(c, te, p);
}

/**
 * The architecture configs alone (as `validateManifest` checks them), for a pack being
 * assembled from a model's config.json files: throws ManifestError listing every problem.
 */
export function validateArchitecture(json: unknown): PackArchitecture {
  return checked(
    (c) => {
      const arch = c.object(json, 'architecture');
      if (arch) checkArchitecture(c, arch);
      return json as PackArchitecture;
    },
    (issues) => new ManifestError(issues),
  );
}

/** A tuning encoder config for a pack (its class named, its fields checked); throws ManifestError. */
export function validatePackTuningEncoder(json: unknown): TuningEncoderConfig {
  return checked(
    (c) => {
      checkPackTuningEncoder(c, json, 'architecture.tuningEncoder');
      return json as TuningEncoderConfig;
    },
    (issues) => new ManifestError(issues),
  );
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
      if (seen.has(lower))
        c.add(key(p, 'path'), `same path as files[${seen.get(lower)}] (paths must differ in more than case)`);
      else seen.set(lower, i);
    }
    const role = c.str(f, 'role', p, { oneOf: FILE_ROLES }) as FileRole | undefined;
    const needsComponent = role === 'weights' || role === 'onnx';
    let component: ComponentName | undefined;
    if (needsComponent) component = c.str(f, 'component', p, { oneOf: COMPONENTS }) as ComponentName | undefined;
    else if (role !== undefined && f.component !== undefined)
      c.add(key(p, 'component'), `only weights and onnx files have a component`);
    if (role === 'onnx') {
      c.str(f, 'graph', p, { optional: true });
      if (f.externalData !== undefined) pending.push({ p: key(p, 'externalData'), i, refs: f.externalData });
    } else if (role !== undefined) {
      if (f.graph !== undefined) c.add(key(p, 'graph'), 'only onnx files have a graph');
      if (f.externalData !== undefined) c.add(key(p, 'externalData'), 'only onnx files have external data');
    }
    if (path !== undefined && role === 'weights' && !path.endsWith('.safetensors'))
      c.add(key(p, 'path'), 'weights must be a .safetensors file');
    if (path !== undefined && role === 'onnx' && !path.endsWith('.onnx'))
      c.add(key(p, 'path'), 'an onnx graph must be a .onnx file');
    c.num(f, 'bytes', p, R(L.fileBytes));
    if (Object.hasOwn(f, 'sha256')) {
      const h = f.sha256;
      if (typeof h !== 'string' || !SHA256_RE.test(h)) {
        c.add(
          key(p, 'sha256'),
          `expected 64 lowercase hex chars, got ${typeof h === 'string' ? `${h.length} chars${/^[0-9A-F]{64}$/i.test(h) ? ' (uppercase)' : ''}` : kind(h)}`,
        );
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
  else if (f.role !== undefined && f.role !== role)
    c.add(at, `${JSON.stringify(path)} has role "${f.role}", expected "${role}"`);
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
    if (typeof t !== 'string' || !re.test(t))
      c.add(
        at,
        `expected one of ${LORA_MODULES.map((m) => `"${m}"`).join(', ')}, optionally prefixed "attn1." or "attn2.", got ${kind(t)}`,
      );
    else if (seen.has(t)) c.add(at, `duplicate target ${JSON.stringify(t)}`);
    else seen.add(t);
  });
}

function checkScheduler(c: Checker, root: Obj): number | undefined {
  if (root.scheduler === undefined) {
    c.add('scheduler', 'required');
    return undefined;
  }
  return checkSchedulerConfig(c, root.scheduler, 'scheduler');
}

/**
 * The one check of a diffusers scheduler config (scheduler_config.json as a pack carries it)
 * at JSON path `p`; returns num_train_timesteps, which bounds the default step count.
 */
export function checkSchedulerConfig(c: Checker, json: unknown, p: string): number | undefined {
  const s = c.object(json, p);
  if (!s) return undefined;
  const steps = c.num(s, 'num_train_timesteps', p, R(L.trainTimesteps));
  const start = c.num(s, 'beta_start', p, { above: 0, max: 1 });
  const end = c.num(s, 'beta_end', p, { above: 0, max: 1 });
  if (start !== undefined && end !== undefined && !(start < end))
    c.add(key(p, 'beta_end'), `must exceed beta_start ${start}, got ${end}`);
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
    if (betas && steps !== undefined && betas.length !== steps)
      c.add(key(p, 'trained_betas'), `expected ${steps} values (num_train_timesteps), got ${betas.length}`);
  }
  return steps;
}

function checkDefaults(c: Checker, root: Obj, trainSteps: number | undefined): void {
  const p = 'defaults';
  if (root.defaults === undefined) return c.add(p, 'required');
  const d = c.object(root.defaults, p);
  if (!d) return;
  c.closed(d, p, [
    'steps',
    'guidanceScale',
    'sampler',
    'blend',
    'negativePrompt',
    'batchSize',
    'placeholder',
    'tuningSteps',
    'tuningLearningRate',
    'nearestWords',
  ]);
  c.num(d, 'steps', p, { ...R(L.steps), max: Math.min(trainSteps ?? L.steps.max, L.steps.max) });
  c.num(d, 'guidanceScale', p, R(L.guidanceScale));
  c.str(d, 'sampler', p, { oneOf: SAMPLERS });
  c.num(d, 'blend', p, { min: 0, max: 1 });
  c.str(d, 'negativePrompt', p, { nonEmpty: false });
  c.num(d, 'batchSize', p, R(L.batchSize));
  const ph = c.str(d, 'placeholder', p);
  if (ph !== undefined && /\s/.test(ph)) c.add(key(p, 'placeholder'), 'must be one word (no spaces)');
  if (ph !== undefined && ph.length > L.tokenChars.max)
    c.add(key(p, 'placeholder'), `longer than ${L.tokenChars.max} characters`);
  c.num(d, 'tuningSteps', p, R(L.tuningSteps));
  c.num(d, 'tuningLearningRate', p, R(L.tuningLearningRate));
  c.num(d, 'nearestWords', p, R(L.nearestWords));
}

function checkTokenizer(
  c: Checker,
  root: Obj,
  files: FileSummary[] | undefined,
  maxPositions: number | undefined,
): void {
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
