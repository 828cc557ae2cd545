// Loads a model pack from a URL into a cache: manifest first, then every file, each one
// downloaded with real progress (bytes, rate, ETA), resumed with an HTTP Range request when
// a previous download stopped part-way, hashed while it streams in, and only committed to
// the cache when its size and sha256 match the manifest. Afterwards the pack loads from the
// cache alone (offline): the manifest is cached too and used when the network is gone.
//
// Browser-safe: fetch, streams and the PackCache interface only. Loading from a folder with
// node:fs is in pack-node.ts.
import { parseManifestBytes, type Manifest, type PackFile } from './manifest.ts';
import { MemoryPackCache, type PackCache } from './pack-cache.ts';
import { Sha256, sha256Hex } from './sha256.ts';
import { InternalError, PackError } from '../domain/errors.ts';

export interface PackProgress {
  /** manifest: fetching it; download: bytes arriving; verify: hashing bytes already on disk; done: all files ready. */
  phase: 'manifest' | 'download' | 'verify' | 'done';
  /** Path of the file being worked on (null for manifest / done). */
  file: string | null;
  fileLoadedBytes: number;
  fileTotalBytes: number;
  /** Over the whole pack; files already in the cache count as loaded. */
  loadedBytes: number;
  totalBytes: number;
  /** Network rate over the last few seconds (0 until measurable). */
  bytesPerSecond: number;
  /** Remaining bytes / rate; null while the rate is unknown. */
  etaSeconds: number | null;
}

export interface LoadPackOptions {
  /** Where files go (default: a new MemoryPackCache). */
  cache?: PackCache;
  onProgress?: (p: PackProgress) => void;
  signal?: AbortSignal;
  /** Injected fetch (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Only these files (e.g. skip ONNX graphs the device cannot use). Default: all. */
  include?: (f: PackFile) => boolean;
  /** Automatic resumes after a dropped connection / cut body, per file (default 3). */
  maxRetries?: number;
  /** Delay before the first retry, doubled each time (default 500 ms). */
  retryDelayMs?: number;
  /** Re-hash files found complete in the cache (default false: size check only). */
  verifyCached?: boolean;
  /** Minimum time between progress reports while bytes stream (default 100 ms). */
  progressIntervalMs?: number;
  /** When given, the manifest's own bytes must hash to this. */
  manifestSha256?: string;
}

export interface LoadedPack {
  readonly manifest: Manifest;
  /** The manifest URL (or folder) the pack came from. */
  readonly source: string;
  /** The files that were loaded (all of them unless `include` filtered). */
  readonly files: readonly PackFile[];
  /** True when the manifest came from the cache because the network failed. */
  readonly offline: boolean;
  read(path: string): Promise<Uint8Array>;
  readRange(path: string, start: number, end: number): Promise<Uint8Array>;
}

export type PackLoadErrorCode =
  | 'manifest' // missing, unreadable or invalid manifest
  | 'http' // unexpected HTTP status
  | 'network' // connection failed and retries ran out
  | 'size-mismatch' // server's file or the bytes received differ in length from the manifest
  | 'sha256-mismatch'
  | 'disk-full'
  | 'not-in-pack';

export class PackLoadError extends PackError {
  constructor(
    readonly code: PackLoadErrorCode,
    message: string,
    readonly file?: string,
    readonly details: { expected?: string | number; actual?: string | number; status?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PackLoadError';
  }
}

/** Where a pack's manifest and files are: `…/pack/` or `…/pack/manifest.json`. */
export function packUrls(url: string, base?: string): { manifest: string; root: string } {
  const u = new URL(url, base ?? (typeof location !== 'undefined' ? location.href : undefined));
  if (u.pathname.endsWith('.json')) return { manifest: u.href, root: new URL('.', u).href };
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return { manifest: new URL('manifest.json', u).href, root: u.href };
}

const utf8 = new TextEncoder();
const manifestKey = (manifestUrl: string) => `manifest-${sha256Hex(utf8.encode(manifestUrl))}`;

/** Downloads (or finds in the cache) every file of the pack at `url`, verified. */
export async function loadPackFromUrl(url: string, options: LoadPackOptions = {}): Promise<LoadedPack> {
  const cache: PackCache = options.cache ?? new MemoryPackCache();
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const { signal } = options;
  const urls = packUrls(url);
  const report = options.onProgress ?? (() => {});
  report({
    phase: 'manifest',
    file: null,
    fileLoadedBytes: 0,
    fileTotalBytes: 0,
    loadedBytes: 0,
    totalBytes: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
  });

  const { manifest, offline } = await loadManifest(urls.manifest, cache, doFetch, options);
  const files = manifest.files.filter(options.include ?? (() => true));
  const progress = new ProgressTracker(
    files.reduce((s, f) => s + f.bytes, 0),
    report,
    options.progressIntervalMs ?? 100,
  );

  // What is missing, and does it fit?
  const todo: PackFile[] = [];
  let needed = 0;
  for (const f of files) {
    const have = await cache.size(f.sha256);
    if (have === f.bytes) {
      if (options.verifyCached && !(await verifyCachedEntry(cache, f, progress, signal))) {
        await cache.delete(f.sha256);
      } else {
        progress.completeFile(f, 'verify');
        continue;
      }
    } else if (have !== null) {
      await cache.delete(f.sha256); // wrong size: a leftover, not our file
    }
    todo.push(f);
    needed += f.bytes - Math.min(f.bytes, await cache.partialSize(f.sha256));
  }
  const free = todo.length ? await cache.availableBytes?.() : null;
  if (free != null && free < needed) {
    throw new PackLoadError(
      'disk-full',
      `not enough storage for the pack: it needs ${formatBytes(needed)} more and ${cache.description} has ${formatBytes(free)} free. ` +
        'Free some space (or delete other packs) and try again; what was downloaded so far is kept.',
      undefined,
      { expected: needed, actual: free },
    );
  }
  for (const f of todo) {
    const run = () => downloadFile(f, new URL(f.path, urls.root).href, cache, doFetch, progress, options);
    await (cache.withLock ? cache.withLock(f.sha256, run) : run());
    signal?.throwIfAborted();
  }
  progress.done();
  return makeLoadedPack(manifest, urls.manifest, files, offline, cache);
}

function makeLoadedPack(
  manifest: Manifest,
  source: string,
  files: PackFile[],
  offline: boolean,
  cache: PackCache,
): LoadedPack {
  const entry = (path: string) => {
    const f = files.find((x) => x.path === path);
    if (!f) throw new PackLoadError('not-in-pack', `${path}: not a (loaded) file of pack "${manifest.name}"`, path);
    return f;
  };
  return {
    manifest,
    source,
    files,
    offline,
    read: async (path) => cache.read(entry(path).sha256),
    readRange: async (path, start, end) => cache.readRange(entry(path).sha256, start, end),
  };
}

async function loadManifest(
  url: string,
  cache: PackCache,
  doFetch: typeof fetch,
  options: LoadPackOptions,
): Promise<{ manifest: Manifest; offline: boolean }> {
  const key = manifestKey(url);
  let bytes: Uint8Array;
  let offline = false;
  try {
    const res = await doFetch(url, { signal: options.signal, cache: 'no-cache' });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new PackLoadError('manifest', `${url}: HTTP ${res.status} ${res.statusText}`.trim(), 'manifest.json', {
        status: res.status,
      });
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    options.signal?.throwIfAborted();
    if (e instanceof PackLoadError) throw e;
    // Network down: use the copy cached by an earlier load, if any.
    if ((await cache.size(key)) === null) {
      throw new PackLoadError(
        'network',
        `cannot fetch the pack manifest ${url}: ${describeError(e)}; the pack was never loaded here, so there is no offline copy`,
        'manifest.json',
        {},
        { cause: e },
      );
    }
    bytes = await cache.read(key);
    offline = true;
  }
  if (options.manifestSha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== options.manifestSha256) {
      throw new PackLoadError(
        'sha256-mismatch',
        `manifest.json: sha256 mismatch: expected ${options.manifestSha256}, got ${actual}`,
        'manifest.json',
        {
          expected: options.manifestSha256,
          actual,
        },
      );
    }
  }
  let manifest: Manifest;
  try {
    manifest = parseManifestBytes(bytes);
  } catch (e) {
    throw new PackLoadError('manifest', `${url}: ${describeError(e)}`, 'manifest.json', {}, { cause: e });
  }
  if (!offline) await cache.put(key, bytes);
  return { manifest, offline };
}

async function verifyCachedEntry(
  cache: PackCache,
  f: PackFile,
  progress: ProgressTracker,
  signal?: AbortSignal,
): Promise<boolean> {
  const h = new Sha256();
  progress.startFile(f, 0, 'verify');
  for await (const chunk of cache.chunks(f.sha256)) {
    signal?.throwIfAborted();
    h.update(chunk);
  }
  return h.hex() === f.sha256;
}

class RetryableError extends InternalError {}

async function downloadFile(
  f: PackFile,
  url: string,
  cache: PackCache,
  doFetch: typeof fetch,
  progress: ProgressTracker,
  options: LoadPackOptions,
): Promise<void> {
  const { signal } = options;
  const maxRetries = options.maxRetries ?? 3;
  let retries = 0;
  let fullRedownloadTried = false;
  let restarts = 0;
  for (;;) {
    signal?.throwIfAborted();
    // Hash what an earlier attempt left, so the digest covers the whole file.
    let have = await cache.partialSize(f.sha256);
    if (have > f.bytes) {
      await cache.deletePartial(f.sha256);
      have = 0;
    }
    const resumed = have > 0;
    progress.startFile(f, have, have > 0 ? 'verify' : 'download');
    let hasher = new Sha256();
    if (have > 0) {
      for await (const chunk of cache.chunks(f.sha256, true)) {
        signal?.throwIfAborted();
        hasher.update(chunk);
      }
      if (hasher.bytesHashed !== have) {
        // The partial changed under us (another writer?): start over.
        await cache.deletePartial(f.sha256);
        continue;
      }
    }
    try {
      if (f.bytes === 0) {
        // Nothing to fetch, but the cache needs an (empty) entry to commit.
        const writer = await openWriter(cache, f, true);
        await writer.close();
      } else if (have < f.bytes) {
        const result = await fetchInto(f, url, have, hasher, cache, doFetch, progress, signal);
        if (result === 'restart') {
          if (++restarts > 2)
            throw new PackLoadError(
              'http',
              `${f.path}: the server keeps answering range requests inconsistently (${url})`,
              f.path,
            );
          continue;
        }
        hasher = result;
      }
    } catch (e) {
      if (e instanceof RetryableError && retries < maxRetries) {
        retries++;
        await sleep((options.retryDelayMs ?? 500) * 2 ** (retries - 1), signal);
        continue;
      }
      if (e instanceof RetryableError) {
        throw new PackLoadError(
          'network',
          `${f.path}: ${e.message}; gave up after ${retries} retries (the ${formatBytes(await cache.partialSize(f.sha256))} received are kept: loading again resumes)`,
          f.path,
          {},
          { cause: e.cause },
        );
      }
      throw e;
    }
    const actual = hasher.hex();
    if (actual !== f.sha256) {
      await cache.deletePartial(f.sha256);
      // A partial from an earlier session may predate a change of the file on the server:
      // one clean download decides.
      if (resumed && !fullRedownloadTried) {
        fullRedownloadTried = true;
        continue;
      }
      throw new PackLoadError(
        'sha256-mismatch',
        `${f.path}: sha256 mismatch: expected ${f.sha256}, got ${actual}. The download is corrupt or the server's file differs from the pack manifest; it was discarded.`,
        f.path,
        { expected: f.sha256, actual },
      );
    }
    await cache.commitPartial(f.sha256);
    progress.completeFile(f);
    return;
  }
}

/**
 * One HTTP request continuing the partial entry from `have`. Returns the hasher over the
 * whole file, or 'restart' when the partial was discarded and the download must begin again.
 */
async function fetchInto(
  f: PackFile,
  url: string,
  have: number,
  hasher: Sha256,
  cache: PackCache,
  doFetch: typeof fetch,
  progress: ProgressTracker,
  signal?: AbortSignal,
): Promise<Sha256 | 'restart'> {
  let res: Response;
  try {
    res = await doFetch(url, {
      signal,
      headers: have > 0 ? { Range: `bytes=${have}-` } : {},
      // The cache stores the bytes; the HTTP cache would only hold a second copy.
      cache: 'no-store',
    });
  } catch (e) {
    signal?.throwIfAborted();
    throw new RetryableError(`cannot reach ${url}: ${describeError(e)}`, { cause: e });
  }
  const cancelBody = () => res.body?.cancel().catch(() => undefined);
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const length = res.headers.get('content-length');
  let truncate = false;
  if (res.status === 206 && have > 0) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (!range || range.start !== have || (range.total !== null && range.total !== f.bytes)) {
      if (range?.total != null && range.total !== f.bytes) {
        await cancelBody();
        throw sizeMismatch(f, range.total);
      }
      // A range we did not ask for: forget the partial and start clean.
      await cancelBody();
      await cache.deletePartial(f.sha256);
      return 'restart';
    }
  } else if (res.status === 200) {
    if (!encoded && length !== null && Number(length) !== f.bytes) {
      await cancelBody();
      throw sizeMismatch(f, Number(length));
    }
    if (have > 0) {
      // Server ignored the Range header: the body is the whole file, so start over.
      truncate = true;
      have = 0;
      hasher = new Sha256();
      progress.restartFile(f);
    } else truncate = true;
  } else if (res.status === 416 && have > 0) {
    await cancelBody();
    const range = parseContentRange(res.headers.get('content-range'));
    if (range?.total != null && range.total !== f.bytes) throw sizeMismatch(f, range.total);
    // The server says our partial is already past its end: discard it and download whole.
    await cache.deletePartial(f.sha256);
    return 'restart';
  } else {
    await cancelBody();
    const why = res.status === 404 ? 'not found on the server' : `HTTP ${res.status} ${res.statusText}`.trim();
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw new RetryableError(`${url}: ${why}`);
    throw new PackLoadError('http', `${f.path}: ${why} (${url})`, f.path, { status: res.status });
  }
  if (!res.body) throw new RetryableError(`${url}: response has no body`);

  const writer = await openWriter(cache, f, truncate);
  const reader = res.body.getReader();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        signal?.throwIfAborted();
        throw new RetryableError(
          `connection lost after ${formatBytes(have)} of ${formatBytes(f.bytes)}: ${describeError(e)}`,
          { cause: e },
        );
      }
      if (chunk.done) break;
      const bytes = chunk.value;
      if (have + bytes.length > f.bytes) {
        throw new PackLoadError(
          'size-mismatch',
          `${f.path}: the server sent more than the ${f.bytes} bytes the manifest lists; the pack on the server does not match its manifest`,
          f.path,
          {
            expected: f.bytes,
            actual: have + bytes.length,
          },
        );
      }
      await writeChunk(writer, bytes, f);
      hasher.update(bytes);
      have += bytes.length;
      progress.advance(f, have, bytes.length);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  } finally {
    await writer.close();
  }
  if (have < f.bytes) throw new RetryableError(`the server's response ended after ${have} of ${f.bytes} bytes`);
  return hasher;
}

async function openWriter(cache: PackCache, f: PackFile, truncate: boolean) {
  try {
    return await cache.openPartial(f.sha256, truncate);
  } catch (e) {
    throw storageError(e, f) ?? e;
  }
}

async function writeChunk(writer: { write(c: Uint8Array): Promise<void> }, bytes: Uint8Array, f: PackFile) {
  try {
    await writer.write(bytes);
  } catch (e) {
    throw storageError(e, f) ?? e;
  }
}

function storageError(e: unknown, f: PackFile): PackLoadError | null {
  const name = (e as { name?: string })?.name;
  const code = (e as { code?: string })?.code;
  if (name === 'QuotaExceededError' || code === 'ENOSPC' || code === 'EDQUOT') {
    return new PackLoadError(
      'disk-full',
      `${f.path}: storage is full; free some space and load again (the download resumes where it stopped)`,
      f.path,
      {},
      { cause: e },
    );
  }
  return null;
}

function sizeMismatch(f: PackFile, serverBytes: number): PackLoadError {
  return new PackLoadError(
    'size-mismatch',
    `${f.path}: the server's file has ${serverBytes} bytes but the manifest says ${f.bytes}${serverBytes < f.bytes ? ' (truncated on the server?)' : ''}`,
    f.path,
    { expected: f.bytes, actual: serverBytes },
  );
}

// "bytes 100-199/1000" → {start 100, end 199, total 1000}; "bytes */1000" (416) → total only.
export function parseContentRange(
  h: string | null,
): { start: number | null; end: number | null; total: number | null } | null {
  if (!h) return null;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(h);
  if (!m) return null;
  const num = (s: string | undefined) => (s === undefined || s === '*' ? null : Number(s));
  return { start: num(m[1]), end: num(m[2]), total: num(m[3]) };
}

/** Progress with a sliding-window rate; reports are rate-limited except at file boundaries. */
class ProgressTracker {
  private completed = 0;
  /** The file being worked on; `counted` once its bytes moved into `completed`. */
  private current: { file: PackFile; have: number; phase: PackProgress['phase']; counted?: boolean } | null = null;
  private network = 0;
  private readonly samples: { t: number; bytes: number }[] = [];
  private lastReport = -Infinity;

  constructor(
    private readonly total: number,
    private readonly report: (p: PackProgress) => void,
    private readonly intervalMs: number,
  ) {}

  startFile(file: PackFile, have: number, phase: PackProgress['phase']) {
    this.current = { file, have, phase };
    this.emit(true);
  }

  /** The server ignored a Range request: the file's count honestly drops back to 0. */
  restartFile(file: PackFile) {
    this.current = { file, have: 0, phase: 'download' };
    this.emit(true);
  }

  advance(file: PackFile, have: number, arrived: number) {
    this.current = { file, have, phase: 'download' };
    this.network += arrived;
    const t = now();
    this.samples.push({ t, bytes: this.network });
    while (this.samples.length > 2 && t - this.samples[0].t > 5000) this.samples.shift();
    this.emit(false);
  }

  /** phase 'verify' for a file found complete in the cache, 'download' for one just fetched. */
  completeFile(file: PackFile, phase: PackProgress['phase'] = 'download') {
    this.completed += file.bytes;
    this.current = { file, have: file.bytes, phase, counted: true };
    this.emit(true);
    this.current = null;
  }

  done() {
    this.current = null;
    this.report({ ...this.snapshot(), phase: 'done', file: null, fileLoadedBytes: 0, fileTotalBytes: 0 });
  }

  private rate(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = (last.t - first.t) / 1000;
    return dt >= 0.25 ? (last.bytes - first.bytes) / dt : 0;
  }

  private snapshot(): PackProgress {
    const c = this.current;
    const inFlight = c && !c.counted ? c.have : 0;
    const loaded = this.completed + inFlight;
    const rate = this.rate();
    return {
      phase: c?.phase ?? 'download',
      file: c?.file.path ?? null,
      fileLoadedBytes: c?.have ?? 0,
      fileTotalBytes: c?.file.bytes ?? 0,
      loadedBytes: loaded,
      totalBytes: this.total,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (this.total - loaded) / rate : loaded === this.total ? 0 : null,
    };
  }

  private emit(force: boolean) {
    const t = now();
    if (!force && t - this.lastReport < this.intervalMs) return;
    this.lastReport = t;
    this.report(this.snapshot());
  }
}

const now = () => performance.now();

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
