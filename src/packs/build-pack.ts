// `likeness pack` (and the browser's Model step): turn a Stable Diffusion 1.x / 2.x model —
// a diffusers folder, or an original single-file checkpoint (.safetensors in the LDM layout
// of A1111/ComfyUI) — into a Likeness pack: the weights under diffusers names (optionally
// fp16), the tokenizer merges, a tuning encoder when one is given (a trained one, or — asked
// for explicitly — the untrained initialisation; without one personalize starts from a class
// word), ONNX graphs whose initializers point into the weights files, and a manifest with
// every file's size and sha256.
//
// It runs in two phases. Planning reads only configs and safetensors headers: every config
// is checked and normalised (diffusers' defaults for missing keys, the scheduler mapped to
// the pack's samplers), every tensor is placed (single-file names converted), and the
// manifest and every tensor the models will ask for are checked — so a bad input fails in
// seconds, before any weight is converted. Writing then streams each tensor by byte range
// into the pack sink, converting dtypes piece by piece (bounded memory, files of any size),
// with progress and cancellation; the sink makes the pack appear only when complete.
//
// IO is abstract (pack-io.ts): Node passes file handles and a staging folder
// (pack-build-node.ts), a browser worker File.slice readers and an OPFS folder.
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import { initTuningEncoder } from '../models/tuning-encoder/tuning-encoder-init.ts';
import { loraTargets, type TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { checkPackWeights } from './pack-weights-check.ts';
import { MissingImageEncoderError } from './missing-image-encoder-error.ts';
import {
  convertLdm,
  detectFamily,
  groupByPrefix,
  type LdmConversion,
  type SdFamily,
  VAE_PREFIX,
} from './ldm-convert.ts';
import {
  describePackFile,
  PACK_FORMAT,
  validateArchitecture,
  validateManifest,
  validatePackTuningEncoder,
  type Manifest,
  type PackFile,
} from './manifest.ts';
import {
  ProgressMeter,
  readJson,
  readSafetensorsHeader,
  type BuildProgress,
  type PackSink,
  type RangedSource,
  type SourceFolder,
} from './pack-io.ts';
import {
  dtypeSize,
  parseSafetensorsHeader,
  writeSafetensors,
  type SafetensorsDType,
  type SafetensorsHeader,
} from './safetensors.ts';
import {
  bundledConfigs,
  CLIP_TEXT_DEFAULTS,
  CLIP_VISION_DEFAULTS,
  defaultVariant,
  UNET_DEFAULTS,
  VAE_DEFAULTS,
  withDefaults,
  type SdVariant,
} from './source-configs.ts';
import { SAMPLERS } from '../domain/samplers.ts';
import { packDefaults } from './pack-defaults.ts';
import { normaliseSchedulerConfig } from './source-scheduler.ts';
import { plannedHeader, writeTensors, type Hasher, type PlannedTensor } from './tensor-stream.ts';

export type PackSource =
  /** A diffusers folder: unet/, vae/, text_encoder/, tokenizer/, scheduler/ (image_encoder/ optional). */
  | { kind: 'diffusers'; folder: SourceFolder }
  /** An original (LDM-layout) single-file checkpoint; configs from `config` or the bundled SD ones. */
  | { kind: 'single-file'; file: RangedSource; config?: SourceFolder; variant?: SdVariant; ema?: boolean };

export interface BuildPackOptions {
  source: PackSource;
  sink: PackSink;
  name: string;
  /** Folder of a CLIPVisionModelWithProjection (config.json + model.safetensors). */
  imageEncoder?: SourceFolder;
  /** Folder holding a trained tuning encoder (config.json + model.safetensors). */
  encoder?: SourceFolder;
  /**
   * Pack the untrained, deterministic initialisation of the tuning encoder (tests, the
   * tiny pack, the trainer's starting point). Without it and without `encoder`, the pack
   * has no tuning encoder: never a silent untrained one.
   */
  untrainedEncoder?: boolean;
  /** VAE override: a diffusers vae folder, or a .safetensors file (diffusers or LDM names). */
  vae?: { folder: SourceFolder } | { file: RangedSource };
  /** merges.txt (or bpe_simple_vocab_16e6.txt[.gz]) when the source has no tokenizer/. */
  tokenizer?: RangedSource;
  /**
   * The merges the project ships (src/packs/clip-bpe/): the last resort when neither
   * `tokenizer` nor the source or config folder gives one, as for single-file checkpoints.
   * A function is called only then (the browser fetches the asset only when it is needed).
   */
  bundledTokenizer?: RangedSource | (() => Promise<RangedSource>);
  /** A scheduler_config.json replacing the source's. */
  scheduler?: RangedSource;
  /** Store float weights as fp16 (halves the download; computation stays fp32 where needed). */
  fp16?: boolean;
  /** Seed of the untrained tuning encoder's initialisation (with untrainedEncoder). */
  seed?: number;
  /** Builds the ONNX graphs for the pack; injected so this file stays free of the tracer. */
  exportGraphs?: (pack: PackDraft) => { graph: string; path: string; bytes: Uint8Array; externalData: string[] }[];
  log?: (line: string) => void;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
  /**
   * Plan and check only: nothing is written (the sink is discarded) and the returned
   * manifest has the planned sizes with all-zero sha256s. For showing sizes before a build.
   */
  dryRun?: boolean;
  /** SHA-256 for the weights files (default: the portable implementation). */
  hasher?: () => Hasher;
  /** Clock for progress (ms). */
  now?: () => number;
}

/** What the graph exporter needs: configs and the headers of the weights files as planned. */
export interface PackDraft {
  architecture: Manifest['architecture'];
  weights: Map<string, { path: string; header: SafetensorsHeader }>;
}

type Json = Record<string, unknown>;
type WeightsComponent = 'text_encoder' | 'unet' | 'vae' | 'image_encoder' | 'tuning_encoder';

interface PlannedFile {
  component: WeightsComponent;
  path: string;
  tensors: PlannedTensor[];
  metadata?: Record<string, string>;
}

const WEIGHT_PATHS: Record<WeightsComponent, string> = {
  text_encoder: 'text_encoder/model.safetensors',
  unet: 'unet/diffusion_pytorch_model.safetensors',
  vae: 'vae/diffusion_pytorch_model.safetensors',
  image_encoder: 'image_encoder/model.safetensors',
  tuning_encoder: 'tuning_encoder/model.safetensors',
};

/** What diffusers and transformers write into every safetensors file they save. */
const PT_METADATA = { format: 'pt' };

const PICKLE_HELP =
  'it is a PyTorch pickle, and loading a pickle can run arbitrary code, so likeness never reads one. ' +
  'Convert it to .safetensors where Python and PyTorch are installed, e.g.\n' +
  `  python -c "import torch, safetensors.torch as st; sd = torch.load('model.ckpt', map_location='cpu', weights_only=True); sd = sd.get('state_dict', sd); ` +
  `st.save_file({k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}, 'model.safetensors')"\n` +
  '(weights_only=True refuses pickles that would run code), then pack the .safetensors file.';

/** Refuses PyTorch pickles (.ckpt/.pt/.pth/.bin, or a zip/pickle header) with the reason. */
export async function refusePickle(src: RangedSource): Promise<void> {
  const ext = /\.(ckpt|pt|pth|bin|pkl)$/i.exec(src.name)?.[1];
  const head = src.size >= 2 ? await src.read(0, 2) : new Uint8Array(0);
  const zip = head[0] === 0x50 && head[1] === 0x4b; // "PK": torch.save's zip container
  const pickle = head[0] === 0x80 && head[1] >= 2 && head[1] <= 5; // pickle protocol 2–5
  if (ext || zip || pickle) throw new Error(`${src.name}: ${PICKLE_HELP}`);
}

const floatTypes: readonly SafetensorsDType[] = ['F16', 'BF16', 'F32', 'F64'];
/** The pack's dtype for a source tensor: fp16 when asked, else F16 stays, other floats → F32. */
function packDtype(src: SafetensorsDType, fp16: boolean): SafetensorsDType {
  if (!floatTypes.includes(src)) return src;
  return fp16 || src === 'F16' ? 'F16' : 'F32';
}

async function requireFile(folder: SourceFolder, path: string, what: string): Promise<RangedSource> {
  const f = await folder.open(path);
  if (!f) throw new Error(`pack: ${what} not found: ${folder.name}/${path}`);
  return f;
}

/** A component's weights in a diffusers folder: plain, .fp16 variant, or sharded (index.json). */
async function diffusersWeights(
  folder: SourceFolder,
  dir: string,
  base: string,
): Promise<{ name: string; src: RangedSource; header: SafetensorsHeader }[]> {
  const at = (f: string) => (dir ? `${dir}/${f}` : f);
  for (const file of [at(`${base}.safetensors`), at(`${base}.fp16.safetensors`)]) {
    const src = await folder.open(file);
    if (src) {
      const header = await readSafetensorsHeader(src);
      return header.tensors.map((t) => ({ name: t.name, src, header }));
    }
  }
  const index = await folder.open(at(`${base}.safetensors.index.json`));
  if (index) {
    const map = (await readJson(index)).weight_map as Record<string, string> | undefined;
    if (!map || typeof map !== 'object') throw new Error(`${index.name}: no weight_map`);
    const out: { name: string; src: RangedSource; header: SafetensorsHeader }[] = [];
    for (const shard of [...new Set(Object.values(map))]) {
      const src = await requireFile(folder, at(shard), 'weights shard');
      const header = await readSafetensorsHeader(src);
      for (const t of header.tensors) out.push({ name: t.name, src, header });
    }
    return out;
  }
  for (const pickle of [at(`${base}.bin`), at(`${base}.ckpt`)]) {
    const src = await folder.open(pickle);
    if (src) throw new Error(`${src.name}: ${PICKLE_HELP}`);
  }
  throw new Error(`pack: no weights in ${folder.name}/${dir} (expected ${base}.safetensors)`);
}

/** Old diffusers VAE files name the mid-block attention query/key/value/proj_attn. */
function modernVaeName(name: string): string {
  return name.replace(
    /(mid_block\.attentions\.0\.)(query|key|value|proj_attn)\./,
    (_m, p: string, w: string) => p + { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' }[w] + '.',
  );
}

export async function buildPack(o: BuildPackOptions): Promise<Manifest> {
  try {
    return await planAndWrite(o);
  } catch (e) {
    // Planning failures too: a sink may have made its staging area already.
    await o.sink.discard();
    throw e;
  }
}

async function planAndWrite(o: BuildPackOptions): Promise<Manifest> {
  const log = o.log ?? (() => {});
  const fp16 = !!o.fp16;
  const signal = o.signal;
  if (o.encoder && o.untrainedEncoder) {
    throw new Error('pack: give either a trained encoder (--encoder) or --untrained-encoder, not both');
  }
  signal?.throwIfAborted();

  // ---------------------------------------------------------------- 1. plan (configs and headers only)
  const files: PlannedFile[] = [];
  const notes: string[] = [];
  /** Things the user should know about the source: logged as warnings and kept in the manifest's description. */
  const warnings: string[] = [];
  let unetJson: Json;
  let vaeJson: Json;
  let textJson: Json;
  let schedulerJson: Json;
  let schedulerWhere: string;
  let tokenizerSrc: RangedSource | null = o.tokenizer ?? null;
  let padToken = '<|endoftext|>';
  let family: SdFamily | null = null;
  let sourceLabel: string;
  let tokenizerFolder: SourceFolder | null = null;

  const addFromEntries = (
    component: WeightsComponent,
    entries: { name: string; src: RangedSource; header: SafetensorsHeader }[],
    rename: (n: string) => string | null = (n) => n,
  ) => {
    const tensors: PlannedTensor[] = [];
    for (const e of entries) {
      const target = rename(e.name);
      if (target === null) continue;
      const info = e.header.byName.get(e.name)!;
      tensors.push({
        name: target,
        shape: info.shape,
        dtype: packDtype(info.dtype, fp16),
        source: e.src,
        offset: info.fileOffset,
        sourceDtype: info.dtype,
      });
    }
    files.push({ component, path: WEIGHT_PATHS[component], tensors, metadata: PT_METADATA });
  };
  const dropIds = (component: string) => (n: string) => {
    if (/embeddings\.position_ids$/.test(n)) {
      notes.push(`${component}: ${n} left out (position ids 0…76 are implied)`);
      return null;
    }
    return n;
  };
  const textNames = (entries: { name: string }[]) => {
    const prefixed = entries.some((e) => e.name.startsWith('text_model.'));
    return (n: string) => dropIds('text_encoder')(prefixed || n.startsWith('text_model.') ? n : `text_model.${n}`);
  };

  if (o.source.kind === 'diffusers') {
    const f = o.source.folder;
    sourceLabel = `diffusers folder ${f.name}`;
    unetJson = await readJson(await requireFile(f, 'unet/config.json', 'UNet config'));
    vaeJson = await readJson(await requireFile(f, 'vae/config.json', 'VAE config'));
    textJson = await readJson(await requireFile(f, 'text_encoder/config.json', 'text encoder config'));
    const sched = o.scheduler ?? (await requireFile(f, 'scheduler/scheduler_config.json', 'scheduler config'));
    schedulerJson = await readJson(sched);
    schedulerWhere = sched.name;
    tokenizerFolder = f;
    const text = await diffusersWeights(f, 'text_encoder', 'model');
    addFromEntries('text_encoder', text, textNames(text));
    addFromEntries('unet', await diffusersWeights(f, 'unet', 'diffusion_pytorch_model'));
    if (!o.vae) addFromEntries('vae', await diffusersWeights(f, 'vae', 'diffusion_pytorch_model'), modernVaeName);
  } else {
    const s = o.source;
    sourceLabel = `single file ${s.file.name}`;
    await refusePickle(s.file);
    const header = await readSafetensorsHeader(s.file);
    const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
    const detected = detectFamily(shapes);
    if (!detected) {
      const sdxl = header.tensors.some((t) => t.name.startsWith('conditioner.embedders.'));
      throw new Error(
        `${s.file.name}: not an SD 1.x / 2.x checkpoint in the original layout${sdxl ? ' (it looks like SDXL, which packs do not support)' : ''}: no model.diffusion_model.* UNet with cond_stage_model.* text encoder`,
      );
    }
    family = detected.family;
    if (s.config) {
      const c = s.config;
      unetJson = await readJson(await requireFile(c, 'unet/config.json', 'UNet config (--config)'));
      vaeJson = await readJson(await requireFile(c, 'vae/config.json', 'VAE config (--config)'));
      textJson = await readJson(await requireFile(c, 'text_encoder/config.json', 'text encoder config (--config)'));
      const sched =
        o.scheduler ?? (await requireFile(c, 'scheduler/scheduler_config.json', 'scheduler config (--config)'));
      schedulerJson = await readJson(sched);
      schedulerWhere = sched.name;
      tokenizerFolder = c;
      log(`  ${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'} single file (${detected.why}); configs from ${c.name}`);
      if (family === 'sd2') padToken = '!';
    } else {
      const { variant, why } = s.variant
        ? { variant: s.variant, why: '--variant' }
        : defaultVariant(family, s.file.name);
      const b = bundledConfigs(variant);
      if ((variant === 'sd15') !== (family === 'sd1'))
        throw new Error(
          `${s.file.name}: --variant ${variant} does not fit these ${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'} weights`,
        );
      unetJson = b.unet;
      vaeJson = b.vae;
      textJson = b.textEncoder;
      schedulerJson = o.scheduler ? await readJson(o.scheduler) : b.scheduler;
      schedulerWhere = o.scheduler?.name ?? `bundled ${variant} scheduler`;
      padToken = b.padToken;
      log(
        `  ${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'} single file (${detected.why}); bundled ${variant} configs (${why})`,
      );
    }
    unetJson = withDefaults(unetJson, UNET_DEFAULTS);
    vaeJson = withDefaults(vaeJson, VAE_DEFAULTS);
    textJson = withDefaults(textJson, CLIP_TEXT_DEFAULTS);
    const conv: LdmConversion = convertLdm(
      shapes,
      family,
      { unet: unetJson as never, vae: vaeJson as never, textLayers: textJson.num_hidden_layers as number },
      { ema: s.ema },
    );
    const reasons = new Map<string, number>();
    for (const why of conv.ignored.values()) reasons.set(why, (reasons.get(why) ?? 0) + 1);
    for (const [why, n] of reasons) notes.push(`${n} tensor${n === 1 ? '' : 's'} left out: ${why}`);
    if (conv.extras.length) {
      const n = conv.extras.length;
      warnings.push(
        `${n} tensor${n === 1 ? '' : 's'} outside the SD model left out (not UNet, VAE or text encoder; e.g. training state or an add-on saved in the same file): ${groupByPrefix(conv.extras)}`,
      );
    }
    for (const component of ['text_encoder', 'unet', 'vae'] as const) {
      if (component === 'vae' && o.vae) continue;
      const tensors: PlannedTensor[] = [];
      for (const [name, m] of conv.components[component]) {
        const info = header.byName.get(m.source)!;
        tensors.push({
          name,
          shape: m.shape,
          dtype: packDtype(info.dtype, fp16),
          source: s.file,
          offset: info.fileOffset + m.elementOffset * dtypeSize(info.dtype),
          sourceDtype: info.dtype,
        });
      }
      files.push({ component, path: WEIGHT_PATHS[component], tensors, metadata: PT_METADATA });
    }
  }
  unetJson = withDefaults(unetJson, UNET_DEFAULTS);
  textJson = withDefaults(textJson, CLIP_TEXT_DEFAULTS);

  // VAE override (--vae): a diffusers vae folder, or a file with diffusers or LDM names.
  if (o.vae) {
    if ('folder' in o.vae) {
      const vf = o.vae.folder;
      vaeJson = await readJson(await requireFile(vf, 'config.json', 'VAE config (--vae)'));
      const src =
        (await vf.open('diffusion_pytorch_model.safetensors')) ??
        (await requireFile(vf, 'diffusion_pytorch_model.fp16.safetensors', 'VAE weights (--vae)'));
      const header = await readSafetensorsHeader(src);
      addFromEntries(
        'vae',
        header.tensors.map((t) => ({ name: t.name, src, header })),
        modernVaeName,
      );
      notes.push(`VAE from ${vf.name}`);
    } else {
      const src = o.vae.file;
      await refusePickle(src);
      const header = await readSafetensorsHeader(src);
      vaeJson = withDefaults(vaeJson, VAE_DEFAULTS);
      const ldm = header.tensors.some((t) =>
        /^(first_stage_model\.)?(encoder\.down\.|decoder\.up\.|encoder\.mid\.)/.test(t.name),
      );
      const kept = header.tensors.filter((t) => !t.name.startsWith('model_ema.') && !t.name.startsWith('loss.'));
      const skipped = header.tensors.length - kept.length;
      const tensors: PlannedTensor[] = [];
      if (ldm) {
        // Named as inside a single file, so the single-file VAE rules apply.
        const full = (n: string) => (n.startsWith(VAE_PREFIX) ? n : VAE_PREFIX + n);
        const byFull = new Map(kept.map((t) => [full(t.name), t]));
        const conv = convertLdm(new Map(kept.map((t) => [full(t.name), t.shape])), 'sd1', {
          unet: unetJson as never,
          vae: vaeJson as never,
          textLayers: 0,
        });
        for (const [name, m] of conv.components.vae) {
          const t = byFull.get(m.source)!;
          tensors.push({
            name,
            shape: m.shape,
            dtype: packDtype(t.dtype, fp16),
            source: src,
            offset: t.fileOffset,
            sourceDtype: t.dtype,
          });
        }
      } else {
        for (const t of kept)
          tensors.push({
            name: modernVaeName(t.name),
            shape: t.shape,
            dtype: packDtype(t.dtype, fp16),
            source: src,
            offset: t.fileOffset,
            sourceDtype: t.dtype,
          });
      }
      files.push({ component: 'vae', path: WEIGHT_PATHS.vae, tensors, metadata: PT_METADATA });
      notes.push(
        `VAE from ${src.name} (${ldm ? 'LDM' : 'diffusers'} names${skipped ? `; ${skipped} EMA/loss tensors left out` : ''})`,
      );
    }
  }
  vaeJson = withDefaults(vaeJson, VAE_DEFAULTS);

  // Image encoder: --image-encoder, else the image_encoder/ of the diffusers folder or of a
  // single file's --config folder.
  const imageFolder = o.imageEncoder ?? (o.source.kind === 'diffusers' ? o.source.folder : (o.source.config ?? null));
  const imagePrefix = o.imageEncoder ? '' : 'image_encoder/';
  const imageConfigSrc = imageFolder ? await imageFolder.open(`${imagePrefix}config.json`) : null;
  if (!imageFolder || !imageConfigSrc) {
    throw new MissingImageEncoderError();
  }
  const imageJson = withDefaults(await readJson(imageConfigSrc), CLIP_VISION_DEFAULTS);
  addFromEntries(
    'image_encoder',
    await diffusersWeights(imageFolder, imagePrefix.replace(/\/$/, ''), 'model'),
    dropIds('image_encoder'),
  );

  // Scheduler: checked and mapped to the pack's samplers now, not after the weights.
  const sched = normaliseSchedulerConfig(schedulerJson, schedulerWhere);
  for (const d of sched.dropped) notes.push(`scheduler: ${d} left out`);

  // Tokenizer: merges (and the pad token SD 2's tokenizer uses).
  if (!tokenizerSrc && tokenizerFolder) tokenizerSrc = await tokenizerFolder.open('tokenizer/merges.txt');
  if (!tokenizerSrc && o.bundledTokenizer) {
    // Every SD 1.x / 2.x text encoder reads the same CLIP BPE vocabulary.
    tokenizerSrc = typeof o.bundledTokenizer === 'function' ? await o.bundledTokenizer() : o.bundledTokenizer;
    notes.push('tokenizer: none in the source, using the bundled CLIP BPE merges (the vocabulary of every SD 1.x/2.x)');
  }
  if (!tokenizerSrc) {
    throw new Error(
      'pack: no tokenizer: single-file checkpoints carry none; pass --tokenizer <merges.txt or bpe_simple_vocab_16e6.txt.gz> (any SD diffusers folder has tokenizer/merges.txt) or --config <diffusers folder>',
    );
  }
  if (tokenizerFolder && !o.tokenizer) {
    const tc = await tokenizerFolder.open('tokenizer/tokenizer_config.json');
    const pad = tc ? (await readJson(tc)).pad_token : undefined;
    if (typeof pad === 'string') padToken = pad;
    else if (pad && typeof pad === 'object' && typeof (pad as { content?: unknown }).content === 'string')
      padToken = (pad as { content: string }).content;
  }

  // Tuning encoder: a trained one, the deterministic initialisation when asked for, or none
  // (personalize then starts from a class word).
  // The configs get their types by passing their checks (the manifest's, refusing what the
  // models cannot run), before anything is built from them.
  const arch = validateArchitecture({
    textEncoder: textJson,
    unet: unetJson,
    vae: vaeJson,
    imageEncoder: imageJson,
    lora: { rank: 4, alpha: 4, targets: ['to_q', 'to_k', 'to_v', 'to_out.0'] },
  });
  let encoderBytes: Uint8Array | null = null;
  if (o.encoder) {
    const cfg = await readJson(await requireFile(o.encoder, 'config.json', 'tuning encoder config'));
    arch.tuningEncoder = validatePackTuningEncoder({ _class_name: 'LikenessTuningEncoder', ...cfg, trained: true });
    addFromEntries('tuning_encoder', await diffusersWeights(o.encoder, '', 'model'));
  } else if (o.untrainedEncoder) {
    try {
      const encoderConfig = { ...defaultTuningEncoderConfig(arch), trained: false };
      const targets = loraTargets(resolveUNetConfig(arch.unet));
      const init = initTuningEncoder(encoderConfig, targets, o.seed ?? 0);
      encoderBytes = writeSafetensors(
        [...init].map(([name, t]) => ({
          name,
          dtype: fp16 ? ('F16' as const) : ('F32' as const),
          shape: t.shape,
          data: t.data,
        })),
        { format: 'pt', note: 'untrained: deterministic initialisation (likeness pack)' },
      );
      arch.tuningEncoder = { _class_name: 'LikenessTuningEncoder', ...encoderConfig };
    } catch (e) {
      // The encoder's architecture cannot fit every base model (SD 2.1-768: CLIP grid 16,
      // UNet grid 12). It was asked for explicitly, so say so rather than drop it.
      if (!/^tuning encoder:/.test((e as Error).message)) throw e;
      throw new Error(
        `pack: --untrained-encoder cannot fit this model (${(e as Error).message}); pack it without the flag: personalization then starts from a class word`,
        { cause: e },
      );
    }
  } else {
    notes.push('no tuning encoder (none given): personalization starts from a class word');
  }

  // Headers of every weights file as it will be written; the manifest and every tensor the
  // models ask for are checked against them before anything is converted.
  const headers: Record<string, SafetensorsHeader> = {};
  const draft: PackDraft = { architecture: arch, weights: new Map() };
  for (const f of files) {
    headers[f.component] = plannedHeader(f.tensors, f.metadata);
    draft.weights.set(f.component, { path: f.path, header: headers[f.component] });
  }
  if (encoderBytes) {
    headers.tuning_encoder = parseSafetensorsHeader(encoderBytes, { fileSize: encoderBytes.length });
    draft.weights.set('tuning_encoder', { path: WEIGHT_PATHS.tuning_encoder, header: headers.tuning_encoder });
  }
  const vaeFactor = 2 ** (arch.vae.block_out_channels.length - 1);
  const latentSize = (arch.unet as { sample_size: number }).sample_size;
  const manifestBody = (packFiles: PackFile[]) => ({
    format: PACK_FORMAT,
    name: o.name,
    description: `Built by likeness pack from a ${sourceLabel}${family ? ` (${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'})` : ''}; scheduler ${sched.sourceClass}, prediction ${sched.config.prediction_type}.${warnings.map((w) => ` Warning: ${w}.`).join('')}`,
    licence: {
      id: 'see base model',
      notice: `Built from ${o.source.kind === 'diffusers' ? o.source.folder.name : o.source.file.name} by likeness pack.`,
    },
    architecture: arch,
    imageSize: latentSize * vaeFactor,
    latentSize,
    vaeScalingFactor: arch.vae.scaling_factor ?? 0.18215,
    scheduler: sched.config,
    defaults: packDefaults(),
    tokenizer: { type: 'clip-bpe' as const, merges: 'tokenizer/merges.txt', maxLength: 77, padToken },
    files: packFiles,
  });
  const placeholderFiles: PackFile[] = [
    ...files.map((f) => ({
      path: f.path,
      role: 'weights' as const,
      component: f.component,
      bytes: headers[f.component].fileSize,
      sha256: '0'.repeat(64),
    })),
    ...(encoderBytes
      ? [
          {
            path: WEIGHT_PATHS.tuning_encoder,
            role: 'weights' as const,
            component: 'tuning_encoder' as const,
            bytes: encoderBytes.length,
            sha256: '0'.repeat(64),
          },
        ]
      : []),
    { path: 'tokenizer/merges.txt', role: 'tokenizer', bytes: 1, sha256: '0'.repeat(64) },
  ];
  const draftManifest = validateManifest(manifestBody(placeholderFiles));
  checkPackWeights(draftManifest, headers);
  if (o.dryRun) {
    for (const n of notes) log(`  note: ${n}`);
    for (const w of warnings) log(`  warning: ${w}`);
    await o.sink.discard();
    return draftManifest;
  }
  const graphs = o.exportGraphs ? o.exportGraphs(draft) : [];
  for (const n of notes) log(`  note: ${n}`);
  for (const w of warnings) log(`  warning: ${w}`);
  log(
    `  scheduler: ${sched.sourceClass} → ${SAMPLERS.join(' / ')}, ${sched.config.prediction_type}, spacing ${sched.config.timestep_spacing ?? "each sampler's default"}`,
  );

  // ---------------------------------------------------------------- 2. write (streamed)
  const total = files.reduce(
    (n, f) => n + f.tensors.reduce((m, t) => m + t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.sourceDtype), 0),
    0,
  );
  const meter = new ProgressMeter(total, o.onProgress, o.now);
  const packFiles: PackFile[] = [];
  try {
    const put = async (
      path: string,
      role: PackFile['role'],
      bytes: Uint8Array,
      extra: Pick<PackFile, 'component' | 'graph' | 'externalData'> = {},
    ) => {
      signal?.throwIfAborted();
      const sink = await o.sink.create(path);
      await sink.write(bytes);
      await sink.close();
      packFiles.push(describePackFile(path, role, bytes, extra));
    };
    for (const f of files) {
      signal?.throwIfAborted();
      const sink = await o.sink.create(f.path);
      const r = await writeTensors(sink, f.tensors, {
        metadata: f.metadata,
        signal,
        onSourceBytes: (n) => meter.add(n, f.path),
        hasher: o.hasher,
      });
      packFiles.push({ path: f.path, role: 'weights', component: f.component, bytes: r.bytes, sha256: r.sha256 });
      log(`  ${f.path}  ${(r.bytes / 1e6).toFixed(2)} MB`);
    }
    if (encoderBytes) {
      await put(WEIGHT_PATHS.tuning_encoder, 'weights', encoderBytes, { component: 'tuning_encoder' });
      log(`  ${WEIGHT_PATHS.tuning_encoder}  untrained initialisation, seed ${o.seed ?? 0}`);
    }
    await put('tokenizer/merges.txt', 'tokenizer', await mergesText(tokenizerSrc));
    for (const g of graphs) {
      await put(g.path, 'onnx', g.bytes, {
        component: componentOfGraph(g.graph),
        graph: g.graph,
        externalData: g.externalData,
      });
      log(`  ${g.path}  ${(g.bytes.length / 1e3).toFixed(1)} kB graph`);
    }
    const manifest = validateManifest(manifestBody(packFiles));
    const manifestSink = await o.sink.create('manifest.json');
    await manifestSink.write(new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
    await manifestSink.close();
    signal?.throwIfAborted();
    await o.sink.commit();
    return manifest;
  } catch (e) {
    await o.sink.discard();
    throw e;
  }
}

/** The merges as text: merges.txt as is, bpe_simple_vocab_16e6.txt.gz decompressed. */
async function mergesText(src: RangedSource): Promise<Uint8Array> {
  const bytes = await src.read(0, src.size);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The tuning encoder's configuration for a base model (widths follow the base model). */
export function defaultTuningEncoderConfig(
  arch: Pick<Manifest['architecture'], 'unet' | 'imageEncoder' | 'textEncoder' | 'lora'>,
): TuningEncoderConfig {
  const unet = resolveUNetConfig(arch.unet);
  const ch = unet.block_out_channels;
  const unetChannels = ch[ch.length - 1];
  const width = Math.max(32, Math.min(256, unetChannels / 4));
  return {
    clip_channels: arch.imageEncoder.hidden_size,
    clip_grid: arch.imageEncoder.image_size / arch.imageEncoder.patch_size,
    unet_channels: unetChannels,
    unet_grid: unet.sample_size / 2 ** (ch.length - 1),
    width,
    trunk_blocks: 2,
    groups: Math.min(32, width / 4),
    token_dim: arch.textEncoder.hidden_size,
    lora_rank: arch.lora.rank,
    lora_alpha: arch.lora.alpha,
    unet_timestep: 0,
  };
}

function componentOfGraph(graph: string): PackFile['component'] {
  if (graph.startsWith('unet')) return 'unet';
  if (graph.startsWith('vae')) return 'vae';
  if (graph.startsWith('text')) return 'text_encoder';
  if (graph.startsWith('image')) return 'image_encoder';
  return 'tuning_encoder';
}
