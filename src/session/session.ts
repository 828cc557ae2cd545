// The application core both shells run: the worker (worker-api.ts, over comlink, for the app)
// and the CLI (in-process). Personalize, generate, import other tools' files, open and export
// concept files, and the PNG a generated image is saved as. Each call validates its request
// once and resolves its defaults once (resolve-settings.ts), so the same request gives the
// same concept and the same image bytes from either shell.
//
// The session holds the loaded pack (runtime-host.ts: one engine, the pack's runtime, re-opened
// after a lost device); where the pack's bytes come from is the shell's business (a URL, OPFS or
// a picked folder in the app; a folder on disk for the CLI).
import type { ConceptData, ForeignImportRequest, ImageResult } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import type { RgbaImage } from '../image/types.ts';
import { generate, type GenerateEvent } from '../pipeline/generate.ts';
import { conceptFromForeign } from '../pipeline/import-concept.ts';
import type { PackRuntime } from '../pipeline/pack-runtime.ts';
import { classWordToken, personalize, type PersonalizeEvent } from '../pipeline/personalize.ts';
import { readForeignFile, type ForeignRead } from '../storage/concept-foreign.ts';
import { placeholderProblem } from '../storage/concept-limits.ts';
import { ConceptFileError, importConcept, type ConceptPackInfo } from '../storage/concept-safetensors.ts';
import { BadRequest } from './bad-request.ts';
import type { CallOptions, SessionGenerateRequest, SessionPersonalizeRequest } from './requests.ts';
import {
  resolveGenerate,
  resolvePersonalize,
  type ResolvedGenerate,
  type ResolvedPersonalize,
} from './resolve-settings.ts';
import { RuntimeHost } from './runtime-host.ts';
import { applyCrop } from './validate.ts';

export interface SessionDeps {
  createEngine(): Promise<Engine>;
  /** Opens a pack's runtime on an engine (weights checked against the configs and uploaded). */
  openRuntime(engine: Engine, pack: LoadedPack): Promise<PackRuntime>;
  /** Photo bytes → upright RGBA (EXIF applied): the browser's decoders, or decode-node in Node. */
  decodeImage(bytes: Uint8Array, mime: string): Promise<RgbaImage>;
}

export interface GenerateResult {
  /** The settings the images were made with, every default resolved. */
  settings: ResolvedGenerate;
  images: ImageResult[];
}

/**
 * The pipeline's events, preceded by the settings the run resolved and where it starts (the
 * CLI prints them; the app's progress has no place for them).
 */
export type SessionPersonalizeEvent =
  | PersonalizeEvent
  | { stage: 'settings'; settings: ResolvedPersonalize; start: 'encoder' | 'class-word'; encoderTrained: boolean };

/** A sampling step of image `image`, of `batch` images in all. */
export type SessionGenerateEvent = GenerateEvent & { batch: number };

export interface ForeignImportResult {
  concept: ConceptData;
  /** What each file held (LoRA layout, rank, embedding vectors), for the shell to report. */
  reads: ForeignRead[];
}

export interface Session {
  /** The engine and the loaded pack's runtime, re-created after a lost device. */
  readonly host: RuntimeHost<Engine, PackRuntime>;
  /**
   * Makes `pack` the loaded pack with its runtime opened now, so a bad pack fails here and the
   * first generation starts at once; the previous pack stays current until this one is ready.
   * Null without a GPU: the pack is kept, and running it says what is missing.
   */
  loadPack(pack: LoadedPack, options?: CallOptions<never>): Promise<PackRuntime | null>;
  personalize(request: SessionPersonalizeRequest, options?: CallOptions<SessionPersonalizeEvent>): Promise<ConceptData>;
  generate(request: SessionGenerateRequest, options?: CallOptions<SessionGenerateEvent>): Promise<GenerateResult>;
  importForeign(request: ForeignImportRequest, options?: CallOptions<never>): Promise<ForeignImportResult>;
  /** A Likeness concept file for the loaded pack; ConceptFileError 'not-a-concept' for other tools' files. */
  openConceptFile(bytes: Uint8Array): Promise<ConceptData>;
  /** The loaded pack's id (manifest name), as generation records and concepts name it. */
  packId(): Promise<string>;
}

/** The loaded pack as concept files are checked against it. */
export function conceptPackInfo(rt: PackRuntime): ConceptPackInfo {
  return {
    hash: rt.hash,
    id: rt.manifest.name,
    tokenDim: rt.tokenDim,
    rank: rt.manifest.architecture.lora.rank,
    targets: rt.loraTargets,
    vocabulary: rt.tokenizer,
  };
}

/** The plain image (no latent): what crosses the worker boundary and what PNGs are made from. */
const imageOut = (i: ImageResult): ImageResult => ({ width: i.width, height: i.height, rgba: i.rgba, seed: i.seed });

export function createSession(deps: SessionDeps): Session {
  const host = new RuntimeHost<Engine, PackRuntime>(() => deps.createEngine(), deps.openRuntime);
  const runtime = () => host.runtime();
  return {
    host,

    async loadPack(pack, { signal } = {}) {
      let engine: Engine;
      try {
        engine = await host.engine();
      } catch {
        host.setPack(pack);
        return null;
      }
      const rt = await deps.openRuntime(engine, pack);
      if (signal?.aborted) {
        rt.dispose();
        signal.throwIfAborted();
      }
      host.adopt(pack, rt);
      return rt;
    },

    async personalize(request, { signal, onProgress } = {}) {
      if (!(request.image instanceof Uint8Array) || request.image.length === 0) {
        throw new BadRequest('No photo was given (the image is empty).');
      }
      const rt = await runtime();
      const s = resolvePersonalize(request, rt.manifest.defaults, rt.encoder !== null);
      // The rules concept import applies (concept-limits.ts); the vocabulary one runs in personalize().
      const phProblem = placeholderProblem(s.placeholder);
      if (phProblem) throw new BadRequest(`The placeholder word ${phProblem}.`);
      if (!rt.encoder) {
        try {
          classWordToken(rt.tokenizer, s.classWord);
        } catch (e) {
          throw new BadRequest(
            s.classWord
              ? `${(e as Error).message.replace(/^the/, 'The')}.`
              : 'This model has no tuning encoder, so personalization starts from a word for what the photo shows. Type one word, such as dog, mug or statue.',
          );
        }
      }
      const photo = applyCrop(await deps.decodeImage(request.image, request.mime), request.crop);
      signal?.throwIfAborted();
      const encoderConfig = rt.manifest.architecture.tuningEncoder as { trained?: boolean } | undefined;
      onProgress?.({
        stage: 'settings',
        settings: s,
        start: rt.encoder ? 'encoder' : 'class-word',
        encoderTrained: encoderConfig?.trained !== false,
      });
      return personalize(
        rt,
        photo,
        {
          placeholder: s.placeholder,
          steps: s.steps,
          learningRate: s.learningRate,
          blend: s.tuningBlend,
          lambdaWeights: s.lambdaWeights,
          lambdaEmbedding: s.lambdaEmbedding,
          seed: s.seed,
          nearestK: s.nearestWords,
          batch: s.batch,
          ...(s.classWord ? { classWord: s.classWord } : {}),
          ...(s.checkpointing !== undefined ? { checkpointing: s.checkpointing } : {}),
        },
        onProgress,
        signal,
      );
    },

    async generate(request, { signal, onProgress } = {}) {
      const rt = await runtime();
      const settings = resolveGenerate(request, rt.manifest.defaults);
      const c = settings.concept;
      if (c && c.packHash !== rt.hash) {
        throw new BadRequest(
          `This concept was made with the pack “${c.packId}”, not the loaded “${rt.manifest.name}”. Load that pack, or choose another concept.`,
        );
      }
      const images = await generate(
        rt,
        { ...settings, previewEvery: request.previewEvery ?? 0 },
        (e) => onProgress?.({ ...e, batch: settings.batch }),
        signal,
      );
      return { settings, images: images.map(imageOut) };
    },

    async importForeign(request, { signal } = {}) {
      const files = Array.isArray(request.files) ? request.files : [];
      if (files.length === 0 || files.length > 2)
        throw new BadRequest('Import one LoRA file, one embedding file, or one of each.');
      if (request.placeholder !== undefined && typeof request.placeholder !== 'string') {
        throw new BadRequest('The placeholder must be text.');
      }
      const rt = await runtime();
      signal?.throwIfAborted();
      const pack = conceptPackInfo(rt);
      try {
        const reads = files.map((f) => {
          if (typeof f?.name !== 'string' || !(f.bytes instanceof Uint8Array))
            throw new BadRequest('Each file needs a name and its bytes.');
          return readForeignFile(f.bytes, pack, {
            fileName: f.name,
            dropTextEncoder: request.dropTextEncoder === true,
            dropOtherLayers: request.dropOtherLayers === true,
          });
        });
        const concept = await conceptFromForeign(rt, reads, { placeholder: request.placeholder?.trim() || undefined });
        return { concept, reads };
      } catch (e) {
        if (e instanceof ConceptFileError) throw new BadRequest(e.message);
        throw e;
      }
    },

    async openConceptFile(bytes) {
      return importConcept(bytes, conceptPackInfo(await runtime()));
    },

    async packId() {
      return (await runtime()).manifest.name;
    },
  };
}
