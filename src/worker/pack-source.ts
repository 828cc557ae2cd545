// Where the worker gets a pack from, and where it keeps it. Every source goes through the
// same loader (progress, resume, sha256, cache): a URL directly; the bundled tiny pack as a
// URL below the app; a folder the user picked as files served by a small in-worker fetch.
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import type { Manifest } from '../packs/manifest.ts';
import { MemoryPackCache, type PackCache } from '../packs/pack-cache.ts';
import { OpfsPackCache } from '../packs/pack-cache-opfs.ts';
import { PackLoadError, type PackProgress } from '../packs/pack-loader.ts';
import { sha256Hex } from '../packs/sha256.ts';
import { STEPS_WITHOUT_ENCODER } from '../pipeline/personalize.ts';
import type { DownloadProgress, PackSource, PackSummary } from '../domain/types.ts';

/** The bundled tiny pack's manifest, below the app's base URL (vite's `base`). */
export function bundledManifestUrl(base: string = import.meta.env.BASE_URL, here: string = self.location.href): string {
  // An absolute base ("/", "/app/") is relative to the origin; a relative one ("./") to the
  // page — and this runs in the worker, whose script lives in the build's assets/ folder.
  const root = base.startsWith('/') ? new URL(base, here) : new URL(`../${base}`, here);
  return new URL('models/tiny/manifest.json', root).href;
}

/** A pseudo-origin for packs read from local files (never fetched over the network). */
const LOCAL_ORIGIN = 'https://local-pack.invalid';

export interface ResolvedSource {
  url: string;
  fetch?: typeof fetch;
  /** For messages: "the bundled pack", an address, a folder name. */
  label: string;
}

export function resolvePackSource(
  source: PackSource,
  bundledUrl: () => string = () => bundledManifestUrl(),
): ResolvedSource {
  switch (source.kind) {
    case 'bundled':
      return { url: bundledUrl(), label: 'the bundled tiny pack' };
    case 'url': {
      let u: URL;
      try {
        u = new URL(source.url);
      } catch {
        throw new PackLoadError('manifest', `“${source.url}” is not a web address.`);
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') {
        throw new PackLoadError('manifest', `“${source.url}” is not an http(s) address.`);
      }
      return { url: u.href, label: source.url };
    }
    case 'files':
      return filesSource(source.files);
    case 'build':
      throw new PackLoadError(
        'manifest',
        'a picked model is built into a pack, not loaded from an address (worker-api.ts builds it)',
      );
  }
}

type FileWithPath = File & { webkitRelativePath?: string };

/**
 * A picked folder as a fetch over its files: the folder's manifest.json (the shallowest one)
 * is the pack root; other paths resolve below it. Range requests are answered, so the loader
 * treats the folder exactly like a server (verify, resume, cache).
 */
export function filesSource(files: readonly File[]): ResolvedSource {
  const rel = (f: FileWithPath) => (f.webkitRelativePath || f.name).replace(/^\/+/, '');
  const manifests = files.filter((f) => rel(f) === 'manifest.json' || rel(f).endsWith('/manifest.json'));
  if (manifests.length === 0) {
    throw new PackLoadError(
      'manifest',
      `the chosen files contain no manifest.json (${files.length} file${files.length === 1 ? '' : 's'} chosen). Choose the pack folder itself — the one that holds manifest.json.`,
      'manifest.json',
    );
  }
  const manifest = manifests.reduce((a, b) => (rel(a).split('/').length <= rel(b).split('/').length ? a : b));
  const prefix = rel(manifest).slice(0, -'manifest.json'.length);
  const byPath = new Map<string, File>();
  for (const f of files) {
    const p = rel(f);
    if (p.startsWith(prefix)) byPath.set(p.slice(prefix.length), f);
  }
  const folder = prefix.replace(/\/$/, '') || 'folder';
  // A per-folder root keeps cached manifests of different folders apart.
  const root = `${LOCAL_ORIGIN}/${encodeURIComponent(folder)}-${sha256Hex(new TextEncoder().encode(`${folder}:${manifest.size}:${manifest.lastModified}`)).slice(0, 12)}/`;
  const localFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    init?.signal?.throwIfAborted();
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const path = decodeURIComponent(url.href.startsWith(root) ? url.href.slice(root.length) : url.pathname);
    const file = byPath.get(path);
    if (!file) return new Response(null, { status: 404, statusText: 'Not Found' });
    const range = /^bytes=(\d+)-$/.exec(new Headers(init?.headers).get('range') ?? '');
    const start = range ? Number(range[1]) : 0;
    if (range && start >= file.size) {
      return new Response(null, { status: 416, headers: { 'content-range': `bytes */${file.size}` } });
    }
    const body = file.slice(start);
    const headers: Record<string, string> = { 'content-length': String(body.size) };
    if (range) headers['content-range'] = `bytes ${start}-${file.size - 1}/${file.size}`;
    return new Response(body, { status: range ? 206 : 200, headers });
  };
  return { url: `${root}manifest.json`, fetch: localFetch, label: `the folder “${folder}”` };
}

export interface OpenedCache {
  cache: PackCache;
  kind: 'opfs' | 'memory';
  note: string | null;
}

/** OPFS when the browser has it; otherwise memory, with a note that says what that costs. */
export function openPackCache(open: () => Promise<PackCache> = () => OpfsPackCache.open()): Promise<OpenedCache> {
  return open().then(
    (cache): OpenedCache => ({ cache, kind: 'opfs', note: null }),
    (e: unknown): OpenedCache => ({
      cache: new MemoryPackCache(),
      kind: 'memory',
      note:
        `This browser cannot keep files in its private storage (${e instanceof Error ? e.message : String(e)}). ` +
        'The model is kept in memory only: it is downloaded again after a reload and is not available offline.',
    }),
  );
}

export function toDownloadProgress(p: PackProgress): DownloadProgress {
  return {
    phase: p.phase,
    file: p.file ?? (p.phase === 'manifest' ? 'manifest.json' : ''),
    loadedBytes: p.loadedBytes,
    totalBytes: p.totalBytes,
    bytesPerSecond: p.bytesPerSecond,
    etaSeconds: p.etaSeconds,
  };
}

/** The hash concepts record; the same bytes PackRuntime hashes (the manifest as parsed). */
export function manifestHash(m: Manifest): string {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(m)));
}

export function packSummary(m: Manifest, hash: string, storage: OpenedCache, offline: boolean): PackSummary {
  const d = m.defaults;
  const textConfig = m.architecture.textEncoder;
  const targets = loraTargets(resolveUNetConfig(m.architecture.unet));
  return {
    id: m.name,
    name: m.version ? `${m.name} ${m.version}` : m.name,
    hash,
    licence: m.licence.id,
    imageSize: m.imageSize,
    placeholderDefault: d.placeholder,
    hasTuningEncoder: !!m.architecture.tuningEncoder,
    tuningEncoderTrained: m.architecture.tuningEncoder?.trained !== false,
    totalBytes: m.files.reduce((n, f) => n + f.bytes, 0),
    defaults: { steps: d.steps, guidance: d.guidanceScale, sampler: d.sampler, blend: d.blend, batch: d.batchSize },
    tuningSteps: m.architecture.tuningEncoder ? d.tuningSteps : STEPS_WITHOUT_ENCODER,
    tokenDim: textConfig.hidden_size,
    rank: m.architecture.lora.rank,
    loraTargets: targets.map((t) => ({ module: t.module, in: t.in, out: t.out })),
    vocabSize: textConfig.vocab_size,
    storage: storage.kind,
    storageNote: storage.note,
    offline,
    description: m.description?.trim() || null,
  };
}
