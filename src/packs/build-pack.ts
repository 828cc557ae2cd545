// `likeness pack`: turn a Hugging Face diffusers folder (config.json + safetensors per
// component, tokenizer files, scheduler config) into a Likeness pack: the same weights
// (optionally fp16), the tokenizer merges, a tuning encoder, ONNX graphs whose initializers
// point into the weights files, and a manifest with every file's size and sha256.
// Node only.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { initTuningEncoder } from '../models/tuning-encoder/tuning-encoder-init.ts';
import { loraTargets, type TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { describePackFile, PACK_FORMAT, validateManifest, type Manifest, type PackFile } from './manifest.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsTensorInput } from './safetensors.ts';
import { normaliseSchedulerConfig } from './source-scheduler.ts';

export interface BuildPackOptions {
  from: string;
  out: string;
  name?: string;
  /** Folder of a CLIPVisionModelWithProjection when `from` has no image_encoder/. */
  imageEncoder?: string;
  /** Folder holding a trained tuning encoder (config.json + model.safetensors). */
  encoder?: string;
  /** Store weights as fp16 (halves the download; computation stays fp32 where needed). */
  fp16?: boolean;
  /** Seed of the untrained tuning encoder's initialisation (when no --encoder). */
  seed?: number;
  /** Write the ONNX graphs (default true). */
  graphs?: boolean;
  /** Builds the ONNX graphs for the pack; injected so this file stays free of the tracer. */
  exportGraphs?: (pack: PackDraft) => { graph: string; path: string; bytes: Uint8Array; externalData: string[] }[];
  log?: (line: string) => void;
}

/** What the graph exporter needs: configs and the weights files as written into the pack. */
export interface PackDraft {
  architecture: Manifest['architecture'];
  weights: Map<string, { path: string; bytes: Uint8Array }>;
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

function requireFile(p: string, what: string): string {
  if (!existsSync(p)) throw new Error(`pack: ${what} not found at ${p}`);
  return p;
}

/** Copy a safetensors file, converting F32 tensors to F16 when asked. */
function convertWeights(bytes: Uint8Array, fp16: boolean): Uint8Array {
  const f = parseSafetensors(bytes);
  if (!fp16) return bytes;
  const tensors: SafetensorsTensorInput[] = f.names().map((name) => {
    const info = f.info(name);
    return info.dtype === 'F32'
      ? { name, dtype: 'F16' as const, shape: info.shape, data: f.float32(name) }
      : { name, dtype: info.dtype, shape: info.shape, data: f.rawBytes(name) };
  });
  return writeSafetensors(tensors, f.hasMetadata ? f.metadata : undefined);
}

/** The tuning encoder's configuration for a base model (widths follow the base model). */
export function defaultTuningEncoderConfig(arch: Pick<Manifest['architecture'], 'unet' | 'imageEncoder' | 'textEncoder' | 'lora'>): TuningEncoderConfig {
  const unet = resolveUNetConfig(arch.unet as unknown as UNetConfig);
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

export function buildPack(o: BuildPackOptions): Manifest {
  const log = o.log ?? (() => {});
  const from = o.from;
  const imageEncoderDir = o.imageEncoder ?? join(from, 'image_encoder');
  const arch = {
    textEncoder: readJson(requireFile(join(from, 'text_encoder/config.json'), 'text encoder config')),
    unet: readJson(requireFile(join(from, 'unet/config.json'), 'UNet config')),
    vae: readJson(requireFile(join(from, 'vae/config.json'), 'VAE config')),
    imageEncoder: readJson(requireFile(join(imageEncoderDir, 'config.json'), 'image encoder config (use --image-encoder)')),
    lora: { rank: 4, alpha: 4, targets: ['to_q', 'to_k', 'to_v', 'to_out.0'] },
  } as Manifest['architecture'];
  // Real SD configs (PNDM, no prediction_type, …) become the complete config the pack needs.
  const schedulerPath = requireFile(join(from, 'scheduler/scheduler_config.json'), 'scheduler config');
  const scheduler = normaliseSchedulerConfig(readJson(schedulerPath), schedulerPath).config;

  mkdirSync(o.out, { recursive: true });
  const files: PackFile[] = [];
  const weights = new Map<string, { path: string; bytes: Uint8Array }>();
  const put = (path: string, bytes: Uint8Array, file: PackFile) => {
    mkdirSync(dirname(join(o.out, path)), { recursive: true });
    writeFileSync(join(o.out, path), bytes);
    files.push(file);
  };
  const addWeights = (component: PackFile['component'] & string, src: string, path: string) => {
    const bytes = convertWeights(new Uint8Array(readFileSync(requireFile(src, `${component} weights`))), !!o.fp16);
    put(path, bytes, describePackFile(path, 'weights', bytes, { component }));
    weights.set(component, { path, bytes });
    log(`  ${path}  ${(bytes.length / 1e6).toFixed(2)} MB`);
  };

  // 1. weights of the base model, by diffusers/transformers names
  addWeights('text_encoder', join(from, 'text_encoder/model.safetensors'), 'text_encoder/model.safetensors');
  addWeights('unet', join(from, 'unet/diffusion_pytorch_model.safetensors'), 'unet/diffusion_pytorch_model.safetensors');
  addWeights('vae', join(from, 'vae/diffusion_pytorch_model.safetensors'), 'vae/diffusion_pytorch_model.safetensors');
  addWeights('image_encoder', join(imageEncoderDir, 'model.safetensors'), 'image_encoder/model.safetensors');

  // 2. the tuning encoder: a trained checkpoint, or a deterministic initialisation
  let encoderConfig: TuningEncoderConfig & { trained: boolean };
  if (o.encoder) {
    encoderConfig = { ...readJson(requireFile(join(o.encoder, 'config.json'), 'tuning encoder config')), trained: true };
    addWeights('tuning_encoder', join(o.encoder, 'model.safetensors'), 'tuning_encoder/model.safetensors');
  } else {
    encoderConfig = { ...defaultTuningEncoderConfig(arch), trained: false };
    const targets = loraTargets(resolveUNetConfig(arch.unet as unknown as UNetConfig));
    const init = initTuningEncoder(encoderConfig, targets, o.seed ?? 0);
    const bytes = writeSafetensors(
      [...init].map(([name, t]) => ({ name, dtype: o.fp16 ? ('F16' as const) : ('F32' as const), shape: t.shape, data: t.data })),
      { format: 'pt', note: 'untrained: deterministic initialisation (likeness pack)' },
    );
    const path = 'tuning_encoder/model.safetensors';
    put(path, bytes, describePackFile(path, 'weights', bytes, { component: 'tuning_encoder' }));
    weights.set('tuning_encoder', { path, bytes });
    log(`  ${path}  untrained initialisation, seed ${o.seed ?? 0}`);
  }
  arch.tuningEncoder = { _class_name: 'LikenessTuningEncoder', ...encoderConfig };

  // 3. tokenizer: CLIP BPE merges
  const mergesSrc = requireFile(join(from, 'tokenizer/merges.txt'), 'tokenizer merges');
  const merges = new Uint8Array(readFileSync(mergesSrc));
  put('tokenizer/merges.txt', merges, describePackFile('tokenizer/merges.txt', 'tokenizer', merges));

  // 4. ONNX graphs whose initializers point into the weights files written above
  if (o.graphs !== false && o.exportGraphs) {
    for (const g of o.exportGraphs({ architecture: arch, weights })) {
      put(g.path, g.bytes, describePackFile(g.path, 'onnx', g.bytes, { component: componentOfGraph(g.graph), graph: g.graph, externalData: g.externalData }));
      log(`  ${g.path}  ${(g.bytes.length / 1e3).toFixed(1)} kB graph`);
    }
  }

  // 5. manifest
  const vaeFactor = 2 ** (arch.vae.block_out_channels.length - 1);
  const latentSize = (arch.unet as { sample_size: number }).sample_size;
  const manifest = validateManifest({
    format: PACK_FORMAT,
    name: o.name ?? 'likeness pack',
    licence: { id: 'see base model', notice: `Built from ${from} by likeness pack.` },
    architecture: arch,
    imageSize: latentSize * vaeFactor,
    latentSize,
    vaeScalingFactor: arch.vae.scaling_factor ?? 0.18215,
    scheduler,
    defaults: {
      steps: 25,
      guidanceScale: 7.5,
      sampler: 'dpmpp-2m',
      blend: 0.25,
      negativePrompt: '',
      batchSize: 1,
      placeholder: 'S*',
      tuningSteps: 12,
      tuningLearningRate: 2e-3,
      nearestWords: 5,
    },
    tokenizer: { type: 'clip-bpe', merges: 'tokenizer/merges.txt', maxLength: 77, padToken: '<|endoftext|>' },
    files,
  });
  writeFileSync(join(o.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

function componentOfGraph(graph: string): PackFile['component'] {
  if (graph.startsWith('unet')) return 'unet';
  if (graph.startsWith('vae')) return 'vae';
  if (graph.startsWith('text')) return 'text_encoder';
  if (graph.startsWith('image')) return 'image_encoder';
  return 'tuning_encoder';
}
