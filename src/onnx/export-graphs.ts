// The ONNX graphs onnxruntime-web runs for sampling, traced from the same model code the
// engine runs (src/models) over a model's configs and safetensors headers. Initializers
// point into the safetensors files (external data), so a graph file holds only structure.
//
// Graphs, inputs → outputs (B = `batch`, fixed at export):
//   text_encoder       inputs_embeds (B, N, C), position_ids (1, N) int64 → last_hidden_state (B, N, C)
//                      (token embeddings are looked up on the CPU so that v* can be spliced in)
//   unet               sample (B, 4, h, w), timestep (B), encoder_hidden_states (B, M, Cc) → noise_pred
//   unet_personalized  + hard_encoder_hidden_states (B, M, Cc), blend (1), and per LoRA target
//                      lora.<module>.A (r, in), lora.<module>.B (out, r); the dual path (Eq. 3)
//                      at every transformer block, LoRA scale alpha/rank baked in
//   vae_encoder        image (B, 3, H, W) → latent_mean, latent_logvar (B, 4, H/f, W/f)
//   vae_decoder        latent (B, 4, h, w) → image (B, 3, h·f, w·f)
//   image_encoder      pixel_values (B, 3, S, S) → last_hidden_state (B, 1 + g², C), image_embeds (B, P)
import { clipText } from '../models/clip/clip-text.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import type { ClipTextConfig, ClipVisionConfig } from '../models/clip/clip-config.ts';
import type { LoraPair } from '../models/lora.ts';
import { Params } from '../models/params.ts';
import { loraTargets, type LoraTarget } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { unet } from '../models/unet/unet.ts';
import { resolveUNetConfig, type ResolvedUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { vaeDecode, vaeEncode } from '../models/vae/vae.ts';
import { checkVaeConfig, type VaeConfig } from '../models/vae/vae-config.ts';
import type { SafetensorsHeader } from '../packs/safetensors.ts';
import type { PackDraft } from '../packs/build-pack.ts';
import { encodeModel, type OnnxModel, type OnnxValueInfo } from './onnx-proto.ts';
import {
  OnnxTracer,
  TraceParams,
  type ExternalWeights,
  type OnnxTracerOptions,
  type TraceValue,
} from './onnx-tracer.ts';

export type GraphName = 'text_encoder' | 'unet' | 'unet_personalized' | 'vae_encoder' | 'vae_decoder' | 'image_encoder';
export const GRAPH_NAMES: readonly GraphName[] = [
  'text_encoder',
  'unet',
  'unet_personalized',
  'vae_encoder',
  'vae_decoder',
  'image_encoder',
];

export interface GraphOptions extends OnnxTracerOptions {
  /** Batch size B of every input (default 1). */
  batch?: number;
}

export interface ExportedGraph {
  name: GraphName;
  model: OnnxModel;
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  /** The external-data locations the initializers point into. */
  externalData: string[];
  /** unet_personalized: the LoRA targets, in input order (A then B for each). */
  loraTargets?: LoraTarget[];
}

/** LoRA of the personalized UNet: W' = W + (alpha/rank)·B·A. */
export interface LoraSpec {
  rank: number;
  alpha: number;
}

const MODEL_VERSION = 'likeness-graphs/1';

function finish(name: GraphName, tracer: OnnxTracer, extra: Partial<ExportedGraph> = {}): ExportedGraph {
  const unused = tracer.unusedInputs();
  if (unused.length) throw new Error(`${name}: graph inputs never used: ${unused.join(', ')}`);
  const model = tracer.model({ name, metadata: { graph: name, format: MODEL_VERSION } });
  return {
    name,
    model,
    inputs: model.graph.inputs,
    outputs: model.graph.outputs,
    externalData: tracer.externalLocations(),
    ...extra,
  };
}

const batchOf = (o: GraphOptions) => {
  const B = o.batch ?? 1;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`graph export: batch ${B} must be a positive integer`);
  return B;
};

/** CLIP text encoder on token embeddings (B, N, C) with position ids (1, N). */
export function exportTextEncoder(
  config: ClipTextConfig,
  weights: ExternalWeights,
  o: GraphOptions & { sequenceLength?: number } = {},
): ExportedGraph {
  const B = batchOf(o);
  const N = o.sequenceLength ?? config.max_position_embeddings;
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  const embeds = t.input('inputs_embeds', [B, N, config.hidden_size]);
  const positions = t.input('position_ids', [1, N], 'int64');
  t.output('last_hidden_state', clipText(t, p, config, embeds, positions));
  return finish('text_encoder', t);
}

interface UNetShapes {
  /** Latent height = width (default: the config's sample_size). */
  latentSize?: number;
  /** Text tokens M of the conditioning (default 77). */
  contextLength?: number;
}

function unetInputs(t: OnnxTracer, c: ResolvedUNetConfig, B: number, o: UNetShapes) {
  const s = o.latentSize ?? c.sample_size;
  const M = o.contextLength ?? 77;
  return {
    sample: t.input('sample', [B, c.in_channels, s, s]),
    timestep: t.input('timestep', [B]),
    context: t.input('encoder_hidden_states', [B, M, c.cross_attention_dim]),
    M,
  };
}

/** ε_θ(z_t, t, C), vanilla weights. */
export function exportUNet(
  config: UNetConfig,
  weights: ExternalWeights,
  o: GraphOptions & UNetShapes = {},
): ExportedGraph {
  const cfg = resolveUNetConfig(config);
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  const { sample, timestep, context } = unetInputs(t, cfg, batchOf(o), o);
  t.output('noise_pred', unet(t, p, cfg, { sample, timesteps: timestep, cond: { context, lora: null, dual: null } }));
  return finish('unet', t);
}

/**
 * The personalized UNet: LoRA A/B of every attention projection as inputs and the dual
 * path at every transformer block, out = blend·B(f, C, ΔW) + (1 − blend)·B(f, C_h, ∅).
 */
export function exportPersonalizedUNet(
  config: UNetConfig,
  weights: ExternalWeights,
  lora: LoraSpec,
  o: GraphOptions & UNetShapes = {},
): ExportedGraph {
  if (!(lora.rank >= 1) || !Number.isInteger(lora.rank))
    throw new RangeError(`LoRA rank ${lora.rank} must be a positive integer`);
  const cfg = resolveUNetConfig(config);
  const B = batchOf(o);
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  const { sample, timestep, context, M } = unetInputs(t, cfg, B, o);
  const hardContext = t.input('hard_encoder_hidden_states', [B, M, cfg.cross_attention_dim]);
  const blend = t.input('blend', [1]);
  const targets = loraTargets(cfg);
  const layers = new Map<string, LoraPair<TraceValue>>();
  for (const target of targets) {
    layers.set(target.module, {
      A: t.input(`lora.${target.module}.A`, [lora.rank, target.in]),
      B: t.input(`lora.${target.module}.B`, [target.out, lora.rank]),
    });
  }
  const cond = { context, lora: { layers, scale: lora.alpha / lora.rank }, dual: { hardContext, alpha: blend } };
  t.output('noise_pred', unet(t, p, cfg, { sample, timesteps: timestep, cond }));
  return finish('unet_personalized', t, { loraTargets: targets });
}

/** VAE encoder: image in [−1, 1] → the latent distribution's mean and log variance (unscaled). */
export function exportVaeEncoder(
  config: VaeConfig,
  weights: ExternalWeights,
  o: GraphOptions & { imageSize?: number } = {},
): ExportedGraph {
  const c = checkVaeConfig(config);
  const S = o.imageSize ?? c.sample_size;
  if (!S) throw new Error('vae_encoder: imageSize is required (the config has no sample_size)');
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  const { mean, logvar } = vaeEncode(t, p, c, t.input('image', [batchOf(o), c.in_channels, S, S]));
  t.output('latent_mean', mean);
  t.output('latent_logvar', logvar);
  return finish('vae_encoder', t);
}

/** VAE decoder: unscaled latent → image in about [−1, 1]. */
export function exportVaeDecoder(
  config: VaeConfig,
  weights: ExternalWeights,
  o: GraphOptions & { latentSize?: number } = {},
): ExportedGraph {
  const c = checkVaeConfig(config);
  const factor = 2 ** (c.block_out_channels.length - 1);
  const s = o.latentSize ?? (c.sample_size ? c.sample_size / factor : undefined);
  if (!s || !Number.isInteger(s)) throw new Error('vae_decoder: latentSize is required');
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  t.output('image', vaeDecode(t, p, c, t.input('latent', [batchOf(o), c.latent_channels, s, s])));
  return finish('vae_decoder', t);
}

/** CLIP vision tower with projection on CLIP-normalised pixels. */
export function exportImageEncoder(
  config: ClipVisionConfig,
  weights: ExternalWeights,
  o: GraphOptions = {},
): ExportedGraph {
  const t = new OnnxTracer(o);
  const p = new Params(new TraceParams(t, [weights]));
  const S = config.image_size;
  const out = clipVision(t, p, config, t.input('pixel_values', [batchOf(o), config.num_channels, S, S]));
  t.output('last_hidden_state', out.lastHiddenState);
  t.output('image_embeds', out.imageEmbeds);
  return finish('image_encoder', t);
}

// ---------------------------------------------------------------- whole models

/** One component: its config.json and its weights file. */
export interface ComponentSource<C> {
  config: C;
  weights: ExternalWeights;
}

export interface ModelSource {
  textEncoder?: ComponentSource<ClipTextConfig>;
  unet?: ComponentSource<UNetConfig>;
  vae?: ComponentSource<VaeConfig>;
  imageEncoder?: ComponentSource<ClipVisionConfig>;
  /** Needed for unet_personalized. */
  lora?: LoraSpec;
}

export interface ModelGraphOptions extends GraphOptions {
  /** Which graphs (default: every one the source has the components for). */
  graphs?: readonly GraphName[];
  /** Batch of the UNet graphs (default `batch`; 2 = classifier-free guidance in one run). */
  unetBatch?: number;
}

/** Export every graph a model's components allow (sizes from the configs). */
export function exportModelGraphs(src: ModelSource, o: ModelGraphOptions = {}): ExportedGraph[] {
  const want = new Set(o.graphs ?? GRAPH_NAMES);
  const out: ExportedGraph[] = [];
  const need = <T>(x: T | undefined, graph: GraphName, what: string): T => {
    if (x === undefined) throw new Error(`${graph}: the model has no ${what}`);
    return x;
  };
  const unetO = { ...o, batch: o.unetBatch ?? o.batch };
  if (want.has('text_encoder')) {
    const c = need(src.textEncoder, 'text_encoder', 'text encoder');
    out.push(exportTextEncoder(c.config, c.weights, o));
  }
  if (want.has('unet')) {
    const c = need(src.unet, 'unet', 'UNet');
    out.push(exportUNet(c.config, c.weights, unetO));
  }
  if (want.has('unet_personalized')) {
    const c = need(src.unet, 'unet_personalized', 'UNet');
    out.push(
      exportPersonalizedUNet(c.config, c.weights, need(src.lora, 'unet_personalized', 'LoRA rank/alpha'), unetO),
    );
  }
  const vaeFactor = src.vae ? 2 ** (src.vae.config.block_out_channels.length - 1) : 1;
  const latentSize = src.unet?.config.sample_size;
  if (want.has('vae_encoder')) {
    const c = need(src.vae, 'vae_encoder', 'VAE');
    out.push(
      exportVaeEncoder(c.config, c.weights, { ...o, imageSize: latentSize ? latentSize * vaeFactor : undefined }),
    );
  }
  if (want.has('vae_decoder')) {
    const c = need(src.vae, 'vae_decoder', 'VAE');
    out.push(exportVaeDecoder(c.config, c.weights, { ...o, latentSize }));
  }
  if (want.has('image_encoder')) {
    const c = need(src.imageEncoder, 'image_encoder', 'image encoder');
    out.push(exportImageEncoder(c.config, c.weights, o));
  }
  return out;
}

/** Where a diffusers / transformers folder keeps each component (relative paths). */
export const DIFFUSERS_LAYOUT = {
  textEncoder: { config: 'text_encoder/config.json', weights: 'text_encoder/model.safetensors' },
  unet: { config: 'unet/config.json', weights: 'unet/diffusion_pytorch_model.safetensors' },
  vae: { config: 'vae/config.json', weights: 'vae/diffusion_pytorch_model.safetensors' },
  imageEncoder: { config: 'image_encoder/config.json', weights: 'image_encoder/model.safetensors' },
} as const;

export interface FolderReader {
  /** Whether the relative path exists. */
  exists(path: string): Promise<boolean>;
  /** The parsed JSON at the relative path. */
  json(path: string): Promise<unknown>;
  /** The safetensors header of the file at the relative path. */
  header(path: string): Promise<SafetensorsHeader>;
}

/**
 * A diffusers folder as a ModelSource: configs and safetensors headers; the external-data
 * locations are the weights' paths relative to the folder, so graphs written at the folder
 * root resolve them on disk as well.
 */
export async function readDiffusersFolder(reader: FolderReader, lora?: LoraSpec): Promise<ModelSource> {
  const src: ModelSource = { lora };
  const load = async <C>(entry: { config: string; weights: string }): Promise<ComponentSource<C> | undefined> => {
    if (!(await reader.exists(entry.config)) || !(await reader.exists(entry.weights))) return undefined;
    return {
      config: (await reader.json(entry.config)) as C,
      weights: { header: await reader.header(entry.weights), location: entry.weights },
    };
  };
  src.textEncoder = await load<ClipTextConfig>(DIFFUSERS_LAYOUT.textEncoder);
  src.unet = await load<UNetConfig>(DIFFUSERS_LAYOUT.unet);
  src.vae = await load<VaeConfig>(DIFFUSERS_LAYOUT.vae);
  src.imageEncoder = await load<ClipVisionConfig>(DIFFUSERS_LAYOUT.imageEncoder);
  return src;
}

/**
 * For `likeness pack` (BuildPackOptions.exportGraphs): every graph of the pack, written at
 * the pack root as `<graph>.onnx`, pointing into the pack's weights files by their paths.
 */
export function exportPackGraphs(
  pack: PackDraft,
  o: ModelGraphOptions = {},
): { graph: string; path: string; bytes: Uint8Array; externalData: string[] }[] {
  const component = <C>(key: string, config: unknown): ComponentSource<C> | undefined => {
    const w = pack.weights.get(key);
    if (!w) return undefined;
    return { config: config as C, weights: { header: w.header, location: w.path } };
  };
  const a = pack.architecture;
  const src: ModelSource = {
    textEncoder: component('text_encoder', a.textEncoder),
    unet: component('unet', a.unet),
    vae: component('vae', a.vae),
    imageEncoder: component('image_encoder', a.imageEncoder),
    lora: { rank: a.lora.rank, alpha: a.lora.alpha },
  };
  return exportModelGraphs(src, o).map((g) => ({
    graph: g.name,
    path: `${g.name}.onnx`,
    bytes: encodeModel(g.model),
    externalData: g.externalData,
  }));
}
