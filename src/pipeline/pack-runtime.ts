// A loaded pack, ready to run on the engine: configs, lazily uploaded parameters per
// component, and the tokenizer. One per (engine, pack).
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { ClipTextConfig, ClipVisionConfig } from '../models/clip/clip-config.ts';
import { EngineOps } from '../models/engine-ops.ts';
import { SafetensorsParams } from '../models/engine-params.ts';
import { Params } from '../models/params.ts';
import { loraTargets, type LoraTarget, type TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig, type ResolvedUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { checkVaeConfig, type VaeConfig } from '../models/vae/vae-config.ts';
import type { Manifest } from '../packs/manifest.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { parseSafetensors, type SafetensorsFile } from '../packs/safetensors.ts';
import { sha256Hex } from '../packs/sha256.ts';
import { ClipTokenizer, END_OF_TEXT } from './clip-tokenizer.ts';
import { checkPackWeights } from './pack-weights-check.ts';
import { PackFileError } from '../packs/pack-file-error.ts';

/** The id of the pack's tokenizer.padToken, or a PackFileError when it is not exactly one token. */
export function padTokenId(m: Manifest, tokenizer: ClipTokenizer): number {
  const pad = m.tokenizer.padToken;
  if (pad === '<|endoftext|>') return END_OF_TEXT;
  const ids = tokenizer.encode(pad);
  if (ids.length !== 1) {
    throw new PackFileError('manifest.json', `tokenizer.padToken ${JSON.stringify(pad)} is ${ids.length} tokens, not one (SD 1.x packs use "<|endoftext|>", SD 2.x "!")`);
  }
  return ids[0];
}

/** The pack's CLIP tokenizer from its merges file, or a PackFileError naming that file. */
export function openTokenizer(m: Manifest, bytes: Uint8Array): ClipTokenizer {
  const file = m.tokenizer.merges;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new PackFileError(file, 'the tokenizer merges file is not valid UTF-8 text; the pack is damaged', { cause: e });
  }
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = new ClipTokenizer(text);
  } catch (e) {
    throw new PackFileError(file, `the tokenizer merges file is damaged (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  // Repeated merge lines collapse vocabulary entries, shifting every later id.
  const vocab = (m.architecture.textEncoder as { vocab_size: number }).vocab_size;
  if (tokenizer.vocabSize !== vocab) {
    throw new PackFileError(file, `the tokenizer merges file gives ${tokenizer.vocabSize} tokens, but the text encoder has vocab_size ${vocab}; the file is damaged or belongs to another model`);
  }
  return tokenizer;
}

export interface EncoderRuntime {
  config: TuningEncoderConfig & { trained?: boolean };
  params: Params<Tensor>;
  targets: LoraTarget[];
}

export class PackRuntime {
  readonly ops: EngineOps;
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
    /** The token-embedding table on the CPU (V × C) for splicing and word look-ups. */
    readonly tokenTable: Float32Array,
    /** The pack's files (ONNX graphs are read from here when the ORT runtime is used). */
    readonly pack: LoadedPack,
  ) {
    this.ops = new EngineOps(engine);
  }

  static async open(engine: Engine, pack: LoadedPack): Promise<PackRuntime> {
    const m = pack.manifest;
    // 1. parse every weights file and check it against what the configs imply
    const files = new Map<string, SafetensorsFile>();
    for (const component of ['text_encoder', 'unet', 'vae', 'image_encoder', ...(m.architecture.tuningEncoder ? ['tuning_encoder'] : [])]) {
      const file = m.files.find((f) => f.role === 'weights' && f.component === component);
      if (!file) throw new Error(`pack "${m.name}": no weights for ${component}`);
      files.set(component, parseSafetensors(await pack.read(file.path)));
    }
    checkPackWeights(m, Object.fromEntries(files));
    const weights = async (component: string) => new SafetensorsParams(engine, [files.get(component)!]);
    const tokenizer = openTokenizer(m, await pack.read(m.tokenizer.merges));
    padTokenId(m, tokenizer); // a padToken of several tokens is refused now, not at the first prompt
    const [textP, unetP, vaeP, visionP] = await Promise.all(['text_encoder', 'unet', 'vae', 'image_encoder'].map(weights));
    const arch = m.architecture;
    const textConfig = arch.textEncoder as unknown as ClipTextConfig;
    const unetConfig = resolveUNetConfig(arch.unet as unknown as UNetConfig);
    let encoder: EncoderRuntime | null = null;
    let encoderP: SafetensorsParams | null = null;
    if (arch.tuningEncoder) {
      encoderP = await weights('tuning_encoder');
      encoder = {
        config: arch.tuningEncoder as unknown as TuningEncoderConfig & { trained?: boolean },
        params: new Params(encoderP),
        targets: loraTargets(unetConfig),
      };
    }
    const tokenTable = files.get('text_encoder')!.float32('text_model.embeddings.token_embedding.weight');
    const manifestBytes = new TextEncoder().encode(JSON.stringify(m));
    const rt = new PackRuntime(
      engine,
      m,
      sha256Hex(manifestBytes),
      tokenizer,
      { config: textConfig, params: new Params(textP) },
      { config: unetConfig, params: new Params(unetP) },
      { config: checkVaeConfig(arch.vae as unknown as VaeConfig), params: new Params(vaeP) },
      { config: arch.imageEncoder as unknown as ClipVisionConfig, params: new Params(visionP) },
      encoder,
      tokenTable,
      pack,
    );
    rt.owned.push(textP, unetP, vaeP, visionP, ...(encoderP ? [encoderP] : []));
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

  /** Row `id` of the token-embedding table. */
  tokenEmbedding(id: number): Float32Array {
    const C = this.tokenDim;
    return this.tokenTable.slice(id * C, (id + 1) * C);
  }

  /** The token-embedding table on the GPU (uploaded once, shared with the text encoder). */
  tokenTableTensor(): Tensor {
    return this.text.params.get('text_model.embeddings.token_embedding.weight', [this.text.config.vocab_size, this.tokenDim]);
  }

  get residentBytes(): number {
    return this.owned.reduce((n, p) => n + p.residentBytes, 0);
  }

  dispose(): void {
    for (const p of this.owned) p.dispose();
  }
}
