// The worker's API (api.ts) over the shared pipeline: packs through the verified, cached
// loader; personalize() and generate() on the engine (or onnxruntime-web for the UNet).
// Everything here is plain data in and out; errors leave as plain WorkerError objects
// (worker-error.ts), results and previews travel as transferables.
import * as Comlink from 'comlink';
import type { Engine } from '../engine/engine.ts';
import type { PackCache } from '../packs/pack-cache.ts';
import { loadPackFromUrl, type LoadedPack } from '../packs/pack-loader.ts';
import { generate } from '../pipeline/generate.ts';
import { conceptFromForeign } from '../pipeline/import-concept.ts';
import { readForeignFile } from '../storage/concept-foreign.ts';
import { ConceptFileError } from '../storage/concept-safetensors.ts';
import { decodeImageBrowser } from '../image/decode-browser.ts';
import { cropRect } from '../image/transform.ts';
import type { RgbaImage } from '../image/types.ts';
import { classWordToken, DEFAULT_PERSONALIZE, personalize, tuningDefaults, type PersonalizeEvent } from '../pipeline/personalize.ts';
import type {
  ConceptData,
  CropRect,
  DownloadProgress,
  GenerateProgress,
  ForeignImportRequest,
  GenerateRequest,
  ImageResult,
  PackSource,
  PackSummary,
  PersonalizeProgress,
  PersonalizeRequest,
} from '../domain/types.ts';
import type { GpuReport, WorkerApi } from './api.ts';
import { SAMPLERS } from '../domain/samplers.ts';
import { JobRegistry, Mutex } from './jobs.ts';
import {
  manifestHash,
  openPackCache,
  packSummary,
  resolvePackSource,
  toDownloadProgress,
  type OpenedCache,
} from './pack-source.ts';
import { buildAndLoad, type PackBuilder } from './pack-build.ts';
import { RuntimeHost } from './runtime-host.ts';
import { toWireError } from './worker-error.ts';
import { conceptFieldProblems, placeholderProblem } from '../storage/concept-limits.ts';
import type { ClipTokenizer } from '../pipeline/clip-tokenizer.ts';
import { openTokenizer, PackRuntime } from '../pipeline/pack-runtime.ts';
import { BadInputError } from '../domain/errors.ts';

export interface WorkerDeps {
  createEngine(): Promise<Engine>;
  openRuntime?(engine: Engine, pack: LoadedPack): Promise<PackRuntime>;
  /** Where packs are kept (default: OPFS, else memory). */
  openCache?(): Promise<OpenedCache>;
  /** The bundled pack's manifest URL (default: below the app's base URL). */
  bundledUrl?(): string;
  /** Photo bytes → upright RGBA (default: the browser's decoders, EXIF applied). */
  decodeImage?(bytes: Uint8Array, mime: string): Promise<RgbaImage>;
  fetch?: typeof fetch;
  /** Cache factory when openCache is not given (tests: a memory cache). */
  cacheFactory?(): Promise<PackCache>;
  /** The streaming pack builder for picked models (default: packs/build-pack.ts, loaded on first use). */
  buildPack?: PackBuilder;
}

/** A request field that is not what the API allows: refused before any work starts. */
class BadRequest extends BadInputError {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}


/** The streaming builder and the graph exporter, imported on first use (loading a pack never needs them). */
const defaultBuilder: PackBuilder = async (o) => {
  const [{ buildPack }, { exportPackGraphs }] = await Promise.all([
    import('../packs/build-pack.ts'),
    import('../onnx/export-graphs.ts'),
  ]);
  return buildPack({ ...o, exportGraphs: exportPackGraphs });
};

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new BadRequest(`${what} must be a whole number from ${lo} to ${hi}, not ${JSON.stringify(v)}.`);
  }
  return v;
}

function numIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new BadRequest(`${what} must be a number from ${lo} to ${hi}, not ${JSON.stringify(v)}.`);
  }
  return v;
}

/** The square crop, in upright (EXIF-applied) pixels of the decoded photo; null: the centred square. */
export function applyCrop(image: RgbaImage, crop: CropRect | null): RgbaImage {
  if (!crop) return cropRect(image);
  const { x, y, size } = crop;
  if (![x, y, size].every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new BadRequest(`The crop ${JSON.stringify(crop)} is not a square in pixels.`);
  }
  const r = { x: Math.round(x), y: Math.round(y), size: Math.round(size) };
  if (r.size < 1 || r.x < 0 || r.y < 0 || r.x + r.size > image.width || r.y + r.size > image.height) {
    throw new BadRequest(
      `The crop (${r.size} × ${r.size} at ${r.x}, ${r.y}) does not lie inside the ${image.width} × ${image.height} photo. Move the crop square back onto the photo.`,
    );
  }
  return cropRect(image, { x: r.x, y: r.y, width: r.size, height: r.size });
}

function toPersonalizeProgress(e: PersonalizeEvent): PersonalizeProgress {
  switch (e.stage) {
    case 'encoding':
      return { stage: 'encoding' };
    case 'nearest':
      return { stage: 'nearest', words: e.words, start: e.start };
    case 'tuning':
      return { stage: 'tuning', step: e.step, steps: e.steps, loss: e.loss };
    case 'done':
      return { stage: 'done' };
  }
}

/** The distinct, transferable ArrayBuffers under these views. */
function buffersOf(views: readonly ArrayBufferView[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) if (v.buffer instanceof ArrayBuffer && v.buffer.byteLength > 0) out.add(v.buffer);
  return [...out];
}

const imageOut = (i: ImageResult): ImageResult => ({ width: i.width, height: i.height, rgba: i.rgba, seed: i.seed });

/** Calls a (comlink-proxied) progress callback without waiting; a gone receiver is ignored. */
function send<T>(cb: ((p: T) => void) | undefined, value: T, transfer: Transferable[] = []): void {
  if (typeof cb !== 'function') return;
  try {
    const r = cb(transfer.length ? Comlink.transfer(value, transfer) : value) as unknown;
    if (r instanceof Promise) r.catch(() => undefined);
  } catch {
    // The caller released the callback (cancelled): progress has nowhere to go.
  }
}

function release(cb: unknown): void {
  const r = (cb as Record<PropertyKey, unknown> | null)?.[Comlink.releaseProxy];
  if (typeof r === 'function') {
    try {
      (r as () => void)();
    } catch {
      // already released
    }
  }
}

export function createWorkerApi(deps: WorkerDeps): WorkerApi & { readonly host: RuntimeHost<Engine, PackRuntime> } {
  // The vision tower is uploaded on the first personalization: generating never needs it.
  const openRuntime = deps.openRuntime ?? ((e: Engine, p: LoadedPack) => PackRuntime.open(e, p, { deferImageEncoder: true }));
  const host = new RuntimeHost<Engine, PackRuntime>(() => deps.createEngine(), openRuntime);
  const jobs = new JobRegistry();
  const gpu = new Mutex();
  // The pack's tokenizer for concept checks, also when no GPU runtime was opened.
  const tokenizers = new WeakMap<LoadedPack, Promise<ClipTokenizer>>();
  let cache: Promise<OpenedCache> | null = null;
  const openCache = () => (cache ??= deps.openCache ? deps.openCache() : openPackCache(deps.cacheFactory));
  const decode =
    deps.decodeImage ??
    ((bytes: Uint8Array, mime: string) =>
      decodeImageBrowser(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime })));

  /** Runs job `jobId`; any failure leaves as a WorkerError, after a lost device was dropped. */
  async function job<T>(jobId: string, callback: unknown, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await jobs.run(jobId, fn);
    } catch (err) {
      const lost = host.recoverFrom(err);
      const e = toWireError(err);
      if (lost && e.kind !== 'cancelled') {
        throw {
          kind: 'device-lost',
          message: `${e.message.replace(/\.?$/, '.')} The GPU was reset; the model will be reloaded on your next try — your concepts are safe.`,
        };
      }
      throw e;
    } finally {
      release(callback);
    }
  }

  const api: WorkerApi & { readonly host: RuntimeHost<Engine, PackRuntime> } = {
    host,

    async probeGpu(): Promise<GpuReport> {
      try {
        const e = await host.engine();
        const l = e.device.limits;
        return {
          ok: true,
          info: e.info,
          limits: { maxBufferSize: l.maxBufferSize, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize },
        };
      } catch (err) {
        return { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    },

    loadPack(jobId: string, source: PackSource, onProgress: (p: DownloadProgress) => void): Promise<PackSummary> {
      return job(jobId, onProgress, async (signal) => {
        const storage = await openCache();
        let pack: LoadedPack;
        if (source.kind === 'build') {
          // A model picked on this device: build the pack into the cache, then load it.
          pack = await buildAndLoad(source.model, {
            name: source.name,
            cache: storage.cache,
            builder: deps.buildPack ?? defaultBuilder,
            signal,
            buildId: jobId,
            onProgress: (p) => send(onProgress, p),
          });
        } else {
          const src = resolvePackSource(source, deps.bundledUrl);
          pack = await loadPackFromUrl(src.url, {
            cache: storage.cache,
            fetch: src.fetch ?? deps.fetch,
            signal,
            onProgress: (p) => send(onProgress, toDownloadProgress(p)),
          });
        }
        // Open the runtime now: the weights are checked against the configs and uploaded
        // once, so a bad pack fails here and the first generation starts at once. The
        // previous pack stays current until this one is ready.
        let hash = manifestHash(pack.manifest);
        await gpu.run(signal, async () => {
          let engine: Engine;
          try {
            engine = await host.engine();
          } catch {
            // No WebGPU: the pack is verified and cached; running it will say what is missing.
            host.setPack(pack);
            return;
          }
          const rt = await openRuntime(engine, pack);
          if (signal.aborted) {
            rt.dispose();
            signal.throwIfAborted();
          }
          host.adopt(pack, rt);
          hash = rt.hash;
        });
        return packSummary(pack.manifest, hash, storage, pack.offline);
      });
    },

    personalize(
      jobId: string,
      request: PersonalizeRequest,
      onProgress: (p: PersonalizeProgress) => void,
    ): Promise<ConceptData> {
      return job(jobId, onProgress, async (signal) => {
        const placeholder = typeof request.placeholder === 'string' ? request.placeholder.trim() : '';
        // The rules concept import applies (concept-limits.ts); the vocabulary one runs in personalize().
        const phProblem = placeholderProblem(placeholder);
        if (phProblem) throw new BadRequest(`The placeholder word ${phProblem}.`);
        const steps = intIn(request.steps, 1, 100, 'Tuning steps');
        const seed = intIn(request.seed, 0, 0xffffffff, 'The tuning seed');
        if (!(request.image instanceof Uint8Array) || request.image.length === 0) {
          throw new BadRequest('No photo was given (the image is empty).');
        }
        const photo = applyCrop(await decode(request.image, request.mime), request.crop);
        signal.throwIfAborted();
        const classWord = typeof request.classWord === 'string' ? request.classWord.trim() : '';
        const concept = await gpu.run(signal, async () => {
          const rt = await host.runtime();
          const d = rt.manifest.defaults;
          if (!rt.encoder) {
            try {
              classWordToken(rt.tokenizer, classWord);
            } catch (e) {
              throw new BadRequest(
                classWord
                  ? `${(e as Error).message.replace(/^the/, 'The')}.`
                  : 'This model has no tuning encoder, so personalization starts from a word for what the photo shows. Type one word, such as dog, mug or statue.',
              );
            }
          }
          return personalize(
            rt,
            photo,
            {
              ...DEFAULT_PERSONALIZE,
              ...tuningDefaults(rt.encoder !== null, d.tuningLearningRate),
              nearestK: d.nearestWords,
              placeholder,
              steps,
              seed,
              ...(classWord ? { classWord } : {}),
            },
            (e) => send(onProgress, toPersonalizeProgress(e)),
            signal,
          );
        });
        return Comlink.transfer(concept, buffersOf([concept.embedding, ...concept.lora.flatMap((l) => [l.A, l.B])]));
      });
    },

    importForeign(jobId: string, request: ForeignImportRequest): Promise<ConceptData> {
      return job(jobId, undefined, async (signal) => {
        const files = Array.isArray(request.files) ? request.files : [];
        if (files.length === 0 || files.length > 2) throw new BadRequest('Import one LoRA file, one embedding file, or one of each.');
        if (request.placeholder !== undefined && typeof request.placeholder !== 'string') throw new BadRequest('The placeholder must be text.');
        const concept = await gpu.run(signal, async () => {
          const rt = await host.runtime();
          const pack = { hash: rt.hash, id: rt.manifest.name, tokenDim: rt.tokenDim, rank: rt.manifest.architecture.lora.rank, targets: rt.loraTargets };
          try {
            const reads = files.map((f) => {
              if (typeof f?.name !== 'string' || !(f.bytes instanceof Uint8Array)) throw new BadRequest('Each file needs a name and its bytes.');
              return readForeignFile(f.bytes, pack, {
                fileName: f.name,
                dropTextEncoder: request.dropTextEncoder === true,
                dropOtherLayers: request.dropOtherLayers === true,
              });
            });
            return await conceptFromForeign(rt, reads, { placeholder: request.placeholder?.trim() || undefined });
          } catch (e) {
            if (e instanceof ConceptFileError) throw new BadRequest(e.message);
            throw e;
          }
        });
        return Comlink.transfer(concept, buffersOf([concept.embedding, ...concept.lora.flatMap((l) => [l.A, l.B])]));
      });
    },

    generate(
      jobId: string,
      request: GenerateRequest,
      onProgress: (p: GenerateProgress) => void,
    ): Promise<ImageResult[]> {
      return job(jobId, onProgress, async (signal) => {
        if (typeof request.prompt !== 'string') throw new BadRequest('The prompt is missing.');
        const steps = intIn(request.steps, 1, 1000, 'Steps');
        const batch = intIn(request.batch, 1, 16, 'Batch');
        const seed = intIn(request.seed, 0, 0xffffffff, 'The seed');
        const guidance = numIn(request.guidance, 0, 100, 'Guidance');
        const blend = numIn(request.blend, 0, 1, 'Blend α');
        if (!(SAMPLERS as readonly string[]).includes(request.sampler)) {
          throw new BadRequest(
            `The sampler must be one of ${SAMPLERS.join(', ')}, not ${JSON.stringify(request.sampler)}.`,
          );
        }
        if (request.rng !== undefined && request.rng !== 'philox' && request.rng !== 'torch') {
          throw new BadRequest(`The random generator must be "philox" or "torch", not ${JSON.stringify(request.rng)}.`);
        }
        if (request.runtime !== 'onnx' && request.runtime !== 'engine') {
          throw new BadRequest(`The runtime must be "onnx" or "engine", not ${JSON.stringify(request.runtime)}.`);
        }
        const images = await gpu.run(signal, async () => {
          const rt = await host.runtime();
          const c = request.concept;
          if (c && c.packHash !== rt.hash) {
            throw new BadRequest(
              `This concept was made with the pack “${c.packId}”, not the loaded “${rt.manifest.name}”. Load that pack, or choose another concept.`,
            );
          }
          // The newest preview of each image in the batch so far.
          const latest: ImageResult[] = [];
          return generate(
            rt,
            {
              prompt: request.prompt,
              negativePrompt: typeof request.negativePrompt === 'string' ? request.negativePrompt : '',
              steps,
              guidance,
              sampler: request.sampler,
              blend,
              batch,
              seed,
              concept: c,
              runtime: request.runtime,
              rng: request.rng ?? 'philox',
              previewEvery: 1,
            },
            (e) => {
              if (e.preview) latest[e.image] = e.preview;
              // Copies: the worker keeps `latest` for the next event, the copies are transferred.
              const previews = latest.filter(Boolean).map((p) => ({ ...imageOut(p), rgba: p.rgba.slice() }));
              send(
                onProgress,
                { step: e.image * e.steps + e.step, steps: e.steps * batch, previews },
                buffersOf(previews.map((p) => p.rgba)),
              );
            },
            signal,
          );
        });
        const out = images.map(imageOut);
        return Comlink.transfer(out, buffersOf(out.map((i) => i.rgba)));
      });
    },

    cancel(jobId: string): void {
      jobs.cancel(jobId);
    },

    async conceptProblems(fields) {
      const pack = host.loadedPack;
      if (!pack) return [];
      let tokenizer = tokenizers.get(pack);
      if (!tokenizer) {
        tokenizer = pack.read(pack.manifest.tokenizer.merges).then((bytes) => openTokenizer(pack.manifest, bytes));
        tokenizers.set(pack, tokenizer);
      }
      try {
        return conceptFieldProblems(fields, await tokenizer);
      } catch (err) {
        throw toWireError(err);
      }
    },
  };
  return api;
}
