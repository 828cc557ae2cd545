// Node side of pack loading (CLI, tests): a pack in a local folder is verified in place —
// every file's size and sha256 against the manifest, streamed, with progress — and read
// from there; `loadPack` picks folder or URL from the source string. Kept apart from
// pack-loader.ts so the browser bundle never sees node:fs.
import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseManifestBytes, type Manifest, type PackFile } from './manifest.ts';
import { NodeFolderPackCache } from './pack-cache-node.ts';
import {
  loadPackFromUrl,
  PackLoadError,
  type LoadedPack,
  type LoadPackOptions,
  type PackProgress,
} from './pack-loader.ts';

export interface FolderLoadOptions {
  onProgress?: (p: PackProgress) => void;
  signal?: AbortSignal;
  include?: (f: PackFile) => boolean;
  /** 'sha256' (default) hashes every file; 'size' trusts a folder you made yourself. */
  verify?: 'sha256' | 'size';
}

const CHUNK = 4 << 20;

/** A pack folder on disk, verified against its manifest. */
export async function loadPackFromFolder(dir: string, options: FolderLoadOptions = {}): Promise<LoadedPack> {
  const root = resolve(dir);
  const report = options.onProgress ?? (() => {});
  let manifest: Manifest;
  try {
    manifest = parseManifestBytes(new Uint8Array(await readFile(join(root, 'manifest.json'))));
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? `no manifest.json in ${root}`
        : `${join(root, 'manifest.json')}: ${(e as Error).message}`;
    throw new PackLoadError('manifest', why, 'manifest.json', {}, { cause: e });
  }
  const files = manifest.files.filter(options.include ?? (() => true));
  const total = files.reduce((s, f) => s + f.bytes, 0);
  let done = 0;
  const t0 = performance.now();
  const emit = (f: PackFile | null, fileLoaded: number, phase: PackProgress['phase']) => {
    const loaded = done + fileLoaded;
    const dt = (performance.now() - t0) / 1000;
    const rate = dt > 0.25 ? loaded / dt : 0;
    report({
      phase,
      file: f?.path ?? null,
      fileLoadedBytes: fileLoaded,
      fileTotalBytes: f?.bytes ?? 0,
      loadedBytes: loaded,
      totalBytes: total,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (total - loaded) / rate : loaded === total ? 0 : null,
    });
  };
  for (const f of files) {
    options.signal?.throwIfAborted();
    const p = join(root, f.path);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch (e) {
      throw new PackLoadError(
        'not-in-pack',
        `${f.path}: missing from the pack folder ${root}`,
        f.path,
        {},
        { cause: e },
      );
    }
    if (size !== f.bytes) {
      throw new PackLoadError(
        'size-mismatch',
        `${f.path}: the file has ${size} bytes but the manifest says ${f.bytes}`,
        f.path,
        { expected: f.bytes, actual: size },
      );
    }
    if ((options.verify ?? 'sha256') === 'sha256') {
      emit(f, 0, 'verify');
      const actual = await hashFile(p, options.signal, (n) => emit(f, n, 'verify'));
      if (actual !== f.sha256) {
        throw new PackLoadError(
          'sha256-mismatch',
          `${f.path}: sha256 mismatch: expected ${f.sha256}, got ${actual}`,
          f.path,
          { expected: f.sha256, actual },
        );
      }
    }
    done += f.bytes;
    emit(f, 0, 'verify');
  }
  report({
    phase: 'done',
    file: null,
    fileLoadedBytes: 0,
    fileTotalBytes: 0,
    loadedBytes: total,
    totalBytes: total,
    bytesPerSecond: 0,
    etaSeconds: 0,
  });
  const entry = (path: string) => {
    const f = files.find((x) => x.path === path);
    if (!f) throw new PackLoadError('not-in-pack', `${path}: not a (loaded) file of pack "${manifest.name}"`, path);
    return join(root, f.path);
  };
  return {
    manifest,
    source: root,
    files,
    offline: false,
    read: async (path) => new Uint8Array(await readFile(entry(path))),
    readRange: async (path, start, end) => {
      const h = await open(entry(path), 'r');
      try {
        const out = new Uint8Array(end - start);
        for (let at = 0; at < out.length;) {
          const { bytesRead } = await h.read(out, at, out.length - at, start + at);
          if (bytesRead === 0) throw new RangeError(`${path}: range [${start}, ${end}) past the end of the file`);
          at += bytesRead;
        }
        return out;
      } finally {
        await h.close();
      }
    },
  };
}

/** sha256 of a file, streamed (node:crypto: ~15× the pure-JS hasher, which matters at GB sizes). */
export async function hashFile(
  path: string,
  signal?: AbortSignal,
  onBytes?: (hashed: number) => void,
): Promise<string> {
  const h = await open(path, 'r');
  try {
    const hasher = createHash('sha256');
    const buf = new Uint8Array(CHUNK);
    for (let pos = 0; ;) {
      signal?.throwIfAborted();
      const { bytesRead } = await h.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      onBytes?.(pos);
    }
    return hasher.digest('hex');
  } finally {
    await h.close();
  }
}

/**
 * Folder or URL. A URL pack is cached in `options.cacheDir` (default: memory only) or the
 * given `options.cache`.
 */
export async function loadPack(
  source: string,
  options: LoadPackOptions & FolderLoadOptions & { cacheDir?: string } = {},
): Promise<LoadedPack> {
  if (/^https?:\/\//i.test(source)) {
    const cache = options.cache ?? (options.cacheDir ? new NodeFolderPackCache(options.cacheDir) : undefined);
    return loadPackFromUrl(source, { ...options, cache });
  }
  return loadPackFromFolder(source, options);
}
