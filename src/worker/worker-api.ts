// The worker's API (api.ts): a thin comlink adapter over the session core (session/session.ts),
// which the CLI runs in-process. What is the worker's own: job ids and cancel → AbortSignal
// (jobs.ts), one GPU job at a time, progress through proxied callbacks, transferables, errors
// as plain WorkerError objects (worker-error.ts), and where a pack's bytes come from (a URL,
// OPFS or a picked model folder); the session loads the pack and keeps its runtime.
import * as Comlink from 'comlink';
import type { Engine } from '../engine/engine.ts';
import type { PackCache } from '../packs/pack-cache.ts';
import { loadPackFromUrl, type LoadedPack } from '../packs/pack-loader.ts';
import { decodeImageBrowser } from '../image/decode-browser.ts';
import type { RgbaImage } from '../image/types.ts';
import type { SessionPersonalizeEvent } from '../session/session.ts';
import type {
  ConceptData,
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
import type { WorkerError } from '../domain/types.ts';
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
import type { RuntimeHost } from '../session/runtime-host.ts';
import { toWireError } from './worker-error.ts';
import { conceptFieldProblems } from '../storage/concept-limits.ts';
import type { ClipTokenizer } from '../pipeline/clip-tokenizer.ts';
import { openTokenizer, PackRuntime } from '../pipeline/pack-runtime.ts';
import { createSession } from '../session/session.ts';

/** The crop rule lives in the session core; re-exported for the worker's tests and callers. */
export { applyCrop } from '../session/validate.ts';

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

/**
 * Rejects with a plain `{kind, message, fallback?}`: comlink carries an Error across the
 * boundary as its message and name only, which would lose the kind and the fallback concept.
 */
function throwWire(e: WorkerError): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error
  throw e;
}

/** The streaming builder and the graph exporter, imported on first use (loading a pack never needs them). */
const defaultBuilder: PackBuilder = async (o) => {
  const [{ buildPack }, { exportPackGraphs }] = await Promise.all([
    import('../packs/build-pack.ts'),
    import('../onnx/export-graphs.ts'),
  ]);
  return buildPack({ ...o, exportGraphs: exportPackGraphs });
};

function toPersonalizeProgress(e: SessionPersonalizeEvent): PersonalizeProgress | null {
  switch (e.stage) {
    case 'encoding':
      return { stage: 'encoding' };
    case 'nearest':
      return { stage: 'nearest', words: e.words, start: e.start };
    case 'tuning':
      return { stage: 'tuning', step: e.step, steps: e.steps, loss: e.loss };
    case 'done':
      return { stage: 'done' };
    case 'settings':
      // The app shows the settings it asked for; nothing to send.
      return null;
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
  const openRuntime =
    deps.openRuntime ?? ((e: Engine, p: LoadedPack) => PackRuntime.open(e, p, { deferImageEncoder: true }));
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
  const session = createSession({ createEngine: () => deps.createEngine(), openRuntime, decodeImage: decode });
  const { host } = session;

  /** Runs job `jobId`; any failure leaves as a WorkerError, after a lost device was dropped. */
  async function job<T>(jobId: string, callback: unknown, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await jobs.run(jobId, fn);
    } catch (err) {
      const lost = host.recoverFrom(err);
      const e = toWireError(err);
      if (lost && e.kind !== 'cancelled') {
        throwWire({
          kind: 'device-lost',
          message: `${e.message.replace(/\.?$/, '.')} The GPU was reset; the model will be reloaded on your next try — your concepts are safe.`,
        });
      }
      throwWire(e);
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
        const rt = await gpu.run(signal, () => session.loadPack(pack, { signal }));
        return packSummary(pack.manifest, rt?.hash ?? manifestHash(pack.manifest), storage, pack.offline);
      });
    },

    personalize(
      jobId: string,
      request: PersonalizeRequest,
      onProgress: (p: PersonalizeProgress) => void,
    ): Promise<ConceptData> {
      return job(jobId, onProgress, async (signal) => {
        const concept = await gpu.run(signal, () =>
          session.personalize(request, {
            signal,
            onProgress: (e) => {
              const p = toPersonalizeProgress(e);
              if (p) send(onProgress, p);
            },
          }),
        );
        return Comlink.transfer(concept, buffersOf([concept.embedding, ...concept.lora.flatMap((l) => [l.A, l.B])]));
      });
    },

    importForeign(jobId: string, request: ForeignImportRequest): Promise<ConceptData> {
      return job(jobId, undefined, async (signal) => {
        const { concept } = await gpu.run(signal, () => session.importForeign(request, { signal }));
        return Comlink.transfer(concept, buffersOf([concept.embedding, ...concept.lora.flatMap((l) => [l.A, l.B])]));
      });
    },

    generate(
      jobId: string,
      request: GenerateRequest,
      onProgress: (p: GenerateProgress) => void,
    ): Promise<ImageResult[]> {
      return job(jobId, onProgress, async (signal) => {
        // The newest preview of each image in the batch so far.
        const latest: ImageResult[] = [];
        const { images } = await gpu.run(signal, () =>
          session.generate(
            { ...request, previewEvery: 1 },
            {
              signal,
              onProgress: (e) => {
                if (e.preview) latest[e.image] = e.preview;
                // Copies: the worker keeps `latest` for the next event, the copies are transferred.
                const previews = latest.filter(Boolean).map((p) => ({ ...imageOut(p), rgba: p.rgba.slice() }));
                send(
                  onProgress,
                  { step: e.image * e.steps + e.step, steps: e.steps * e.batch, previews },
                  buffersOf(previews.map((p) => p.rgba)),
                );
              },
            },
          ),
        );
        return Comlink.transfer(images, buffersOf(images.map((i) => i.rgba)));
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
        throwWire(toWireError(err));
      }
    },
  };
  return api;
}
