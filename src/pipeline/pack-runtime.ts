// A loaded pack, ready to run on the engine: configs, parameters per component (streamed to
// the GPU at open, tensor by tensor; no weights file is kept in memory), and the tokenizer.
// One per (engine, pack).
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { ClipTextConfig, ClipVisionConfig } from '../models/clip/clip-config.ts';
import { EngineOps } from '../models/engine-ops.ts';
import {
  frozenWeightsF16,
  openSafetensorsSource,
  SafetensorsParams,
  type SafetensorsSource,
} from '../models/engine-params.ts';
import { embedding } from '../kernels/embedding/embedding.ts';
import { Params } from '../models/params.ts';
import {
  loraTargets,
  type LoraTarget,
  type TuningEncoderConfig,
} from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig, type ResolvedUNetConfig } from '../models/unet/unet-config.ts';
import { checkVaeConfig, type VaeConfig } from '../models/vae/vae-config.ts';
import type { Manifest } from '../packs/manifest.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { sha256Hex } from '../packs/sha256.ts';
import type { SafetensorsHeader } from '../packs/safetensors.ts';
import { ClipTokenizer } from './clip-tokenizer.ts';
import { checkPackWeights } from '../packs/pack-weights-check.ts';
import { PackFileError } from '../packs/pack-file-error.ts';

/**
 * The id of the pack's tokenizer.padToken, looked up as one vocabulary entry (as
 * transformers' CLIPTokenizer resolves pad_token: SD 2.x's "!" is id 0, not the id 256 of
 * the text "!"), or a PackFileError when it is not an entry.
 */
export function padTokenId(m: Manifest, tokenizer: ClipTokenizer): number {
  const pad = m.tokenizer.padToken;
  const id = tokenizer.tokenId(pad);
  if (id === undefined) {
    throw new PackFileError(
      'manifest.json',
      `tokenizer.padToken ${JSON.stringify(pad)} is not one vocabulary entry (as text it is ${tokenizer.encode(pad).length} tokens); SD 1.x packs use "<|endoftext|>", SD 2.x "!"`,
    );
  }
  return id;
}

/** The pack's CLIP tokenizer from its merges file, or a PackFileError naming that file. */
export function openTokenizer(m: Manifest, bytes: Uint8Array): ClipTokenizer {
  const file = m.tokenizer.merges;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new PackFileError(file, 'the tokenizer merges file is not valid UTF-8 text; the pack is damaged', {
      cause: e,
    });
  }
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = new ClipTokenizer(text);
  } catch (e) {
    throw new PackFileError(
      file,
      `the tokenizer merges file is damaged (${e instanceof Error ? e.message : String(e)})`,
      { cause: e },
    );
  }
  // Repeated merge lines collapse vocabulary entries, shifting every later id.
  const vocab = m.architecture.textEncoder.vocab_size;
  if (tokenizer.vocabSize !== vocab) {
    throw new PackFileError(
      file,
      `the tokenizer merges file gives ${tokenizer.vocabSize} tokens, but the text encoder has vocab_size ${vocab}; the file is damaged or belongs to another model`,
    );
  }
  return tokenizer;
}

export interface EncoderRuntime {
  config: TuningEncoderConfig & { trained?: boolean };
  params: Params<Tensor>;
  targets: LoraTarget[];
}

export interface PackRuntimeOptions {
  /**
   * GPU dtype of the frozen linear and conv weights: 'stored' (default) keeps fp16 files fp16
   * and fp32 files fp32; 'f16' rounds fp32 files to fp16 too; 'f32' widens everything (the
   * reference mode). Everything else (biases, norms, embedding tables, the tuning encoder) is fp32.
   */
  weights?: 'stored' | 'f16' | 'f32';
  /**
   * Upload the CLIP vision tower (0.6 GB for CLIP-L) only when ensureImageEncoder() asks for
   * it — personalize() does — so a session that only generates never holds it.
   */
  deferImageEncoder?: boolean;
  /**
   * Activation dtype of the UNet and the VAE at inference (generate, the frozen passes of
   * personalize); training always keeps fp32. 'auto' (default): fp16 when the adapter has
   * shader-f16 and the UNet's weights are held fp16 — a pack of fp16 weights already accepts
   * fp16 rounding, and at 512 px this halves the activations; fp32 otherwise. 'f16' without
   * shader-f16 is refused.
   */
  activations?: 'auto' | 'f32' | 'f16';
}

/** Whether the runtime keeps activations fp16 at inference (see PackRuntimeOptions.activations). */
export function halfActivations(engine: Engine, unetWeights: SafetensorsHeader, options: PackRuntimeOptions): boolean {
  const mode = options.activations ?? 'auto';
  if (mode === 'f32') return false;
  if (mode === 'f16') {
    if (!engine.f16) throw new Error('fp16 activations need an adapter with shader-f16; this one has none');
    return true;
  }
  const weights = options.weights ?? 'stored';
  const stored16 = unetWeights.tensors.some((t) => t.dtype === 'F16');
  return engine.f16 && (weights === 'f16' || (weights === 'stored' && stored16));
}

export class PackRuntime {
  readonly ops: EngineOps;
  /**
   * The same backend with fp32 activations (`ops` itself when those are fp32): generate redoes
   * a UNet step or the decode with it when fp16 activations overflowed (±65504) into Inf/NaN.
   */
  readonly opsF32: EngineOps;
  private readonly owned: SafetensorsParams[] = [];

  private constructor(
    readonly engine: Engine,
    readonly manifest: Manifest,
    /** sha256 of manifest.json: concepts record it and are refused by other packs. */
    readonly hash: string,
    readonly tokenizer: ClipTokenizer,
    readonly text: { config: ClipTextConfig; params: Params<Tensor> },
    readonly unet: { config: ResolvedUNetConfig; params: Params<Tensor> },
    readonly vae: { config: VaeConfig; params: Params<Tensor> },
    readonly vision: { config: ClipVisionConfig; params: Params<Tensor> },
    readonly encoder: EncoderRuntime | null,
    /** The pack's files (ONNX graphs are read from here when the ORT runtime is used). */
    readonly pack: LoadedPack,
    /** UNet and VAE activations fp16 at inference (PackRuntimeOptions.activations). */
    readonly halfActivations = false,
  ) {
    this.ops = new EngineOps(engine, { halfActivations });
    this.opsF32 = halfActivations ? new EngineOps(engine) : this.ops;
  }

  static async open(engine: Engine, pack: LoadedPack, options: PackRuntimeOptions = {}): Promise<PackRuntime> {
    const m = pack.manifest;
    // 1. read only the header of every weights file and check it against what the configs imply
    const sources = new Map<string, SafetensorsSource>();
    for (const component of [
      'text_encoder',
      'unet',
      'vae',
      'image_encoder',
      ...(m.architecture.tuningEncoder ? ['tuning_encoder'] : []),
    ]) {
      const file = m.files.find((f) => f.role === 'weights' && f.component === component);
      if (!file) throw new Error(`pack "${m.name}": no weights for ${component}`);
      sources.set(
        component,
        await openSafetensorsSource((start, end) => pack.readRange(file.path, start, end), file.bytes),
      );
    }
    checkPackWeights(m, Object.fromEntries([...sources].map(([c, s]) => [c, s.header])));
    const half = halfActivations(engine, sources.get('unet')!.header, options);
    // 2. stream each file to the GPU tensor by tensor; nothing of it stays in JS memory
    const mode = options.weights ?? 'stored';
    const weights = async (component: string) => {
      // The tuning encoder's weights are few and read by f32-only kernels (and trained in pre-training).
      const f16 = mode === 'f32' || component === 'tuning_encoder' ? undefined : frozenWeightsF16;
      const p = new SafetensorsParams(engine, [sources.get(component)!], { f16, f32ToF16: mode === 'f16' });
      if (!(component === 'image_encoder' && options.deferImageEncoder)) await p.preload();
      return p;
    };
    const arch = m.architecture;
    const tokenizer = openTokenizer(m, await pack.read(m.tokenizer.merges));
    padTokenId(m, tokenizer); // a padToken of several tokens is refused now, not at the first prompt
    // One file at a time (reads stay small); what was uploaded is freed if a later one fails.
    const uploaded: SafetensorsParams[] = [];
    try {
      for (const c of [
        'text_encoder',
        'unet',
        'vae',
        'image_encoder',
        ...(arch.tuningEncoder ? ['tuning_encoder'] : []),
      ]) {
        uploaded.push(await weights(c));
      }
    } catch (e) {
      for (const p of uploaded) p.dispose();
      throw e;
    }
    const [textP, unetP, vaeP, visionP, encoderP = null] = uploaded;
    const textConfig = arch.textEncoder;
    const unetConfig = resolveUNetConfig(arch.unet);
    let encoder: EncoderRuntime | null = null;
    if (arch.tuningEncoder && encoderP) {
      encoder = {
        config: arch.tuningEncoder,
        params: new Params(encoderP),
        targets: loraTargets(unetConfig),
      };
    }
    const manifestBytes = new TextEncoder().encode(JSON.stringify(m));
    const rt = new PackRuntime(
      engine,
      m,
      sha256Hex(manifestBytes),
      tokenizer,
      { config: textConfig, params: new Params(textP) },
      { config: unetConfig, params: new Params(unetP) },
      { config: checkVaeConfig(arch.vae), params: new Params(vaeP) },
      { config: arch.imageEncoder, params: new Params(visionP) },
      encoder,
      pack,
      half,
    );
    rt.owned.push(...uploaded);
    rt.visionParams = visionP;
    rt.visionDeferred = options.deferImageEncoder === true;
    return rt;
  }

  /** The id prompts are padded with (tokenizer.padToken). */
  get padId(): number {
    return padTokenId(this.manifest, this.tokenizer);
  }

  /** Every attention projection that carries LoRA (with or without a tuning encoder). */
  get loraTargets(): LoraTarget[] {
    return loraTargets(this.unet.config);
  }

  get tokenDim(): number {
    return this.text.config.hidden_size;
  }

  /** Row `id` of the token-embedding table, gathered on the GPU (the table is not kept on the CPU). */
  async tokenEmbedding(id: number): Promise<Float32Array> {
    const row = this.engine.noGrad(() => embedding([id], this.tokenTableTensor()));
    try {
      return await row.read();
    } finally {
      row.dispose();
    }
  }

  /** Rows `ids` of the token-embedding table as a constant (…idsShape, C) tensor, gathered on the GPU. */
  tokenRows(ids: readonly number[], idsShape: readonly number[] = [ids.length]): Tensor {
    return this.engine.noGrad(() => embedding(ids, this.tokenTableTensor(), idsShape));
  }

  /** The token-embedding table on the GPU (uploaded once, shared with the text encoder). */
  tokenTableTensor(): Tensor {
    return this.text.params.get('text_model.embeddings.token_embedding.weight', [
      this.text.config.vocab_size,
      this.tokenDim,
    ]);
  }

  private visionParams: SafetensorsParams | null = null;
  private visionUpload: Promise<void> | null = null;
  private visionDeferred = false;

  /**
   * Frees the vision tower's GPU memory (0.6 GB for CLIP-L) when open() deferred it: only
   * the encoder's prediction needs it, not tuning or generating; ensureImageEncoder()
   * uploads it again. A no-op for runtimes that hold it from the start.
   */
  releaseImageEncoder(): void {
    if (!this.visionDeferred || !this.visionUpload) return;
    this.visionParams!.dispose();
    this.visionUpload = null;
  }

  /** Upload the vision tower if open() deferred it (idempotent; personalize() calls it). */
  ensureImageEncoder(): Promise<void> {
    this.visionUpload ??= this.visionParams!.preload().catch((e: unknown) => {
      this.visionUpload = null;
      throw e;
    });
    return this.visionUpload;
  }

  get residentBytes(): number {
    return this.owned.reduce((n, p) => n + p.residentBytes, 0);
  }

  dispose(): void {
    for (const p of this.owned) p.dispose();
  }
}
