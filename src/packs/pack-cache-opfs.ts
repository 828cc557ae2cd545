// Pack cache in the browser's Origin Private File System (navigator.storage.getDirectory()).
// Layout in a folder "likeness-packs": complete entries `<key>`, downloads in progress
// `<key>.partial`, atomic-write temporaries `<key>.tmp`.
//
// Atomicity: an entry is only ever created by moving a finished file onto its final name
// (FileSystemHandle.move, in Chromium and Firefox, Safari ≥ 17). Where move() is missing, the
// final file is written through createWritable(), whose data only lands on close() — but
// getFileHandle({create}) makes an empty file first, so a crash there can leave a 0-byte
// entry; the loader compares every entry's size with the manifest (and the sha256 on
// demand), so such a leftover counts as absent and is replaced.
//
// Partial downloads: in a dedicated worker the partial file is written through a
// FileSystemSyncAccessHandle (in place, flushed every few MB, so a closed tab keeps what
// arrived); elsewhere through createWritable(), closed and reopened every few MB because a
// writable's data only reaches the file on close().
import { checkCacheKey, checkRange, PackCacheMissError, type PackCache, type PartialWriter } from './pack-cache.ts';

const DEFAULT_DIR = 'likeness-packs';
/** How much a partial download may lose on a crash. */
const CHECKPOINT_BYTES = 8 << 20;

type MovableHandle = FileSystemFileHandle & {
  move?: (a: FileSystemDirectoryHandle | string, b?: string) => Promise<void>;
};

const isNotFound = (e: unknown) => (e as DOMException)?.name === 'NotFoundError';

export class OpfsPackCache implements PackCache {
  readonly description = 'OPFS';

  private constructor(private readonly dir: FileSystemDirectoryHandle) {}

  /** Opens (creating) the cache folder; asks the browser to keep the storage persistent. */
  static async open(dirName = DEFAULT_DIR): Promise<OpfsPackCache> {
    if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) {
      throw new Error(
        'this browser has no Origin Private File System (navigator.storage.getDirectory); packs cannot be cached',
      );
    }
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle(dirName, { create: true });
    // Best effort: without it the browser may evict a multi-GB pack under storage pressure.
    await navigator.storage.persist?.().catch(() => false);
    return new OpfsPackCache(dir);
  }

  private async file(name: string): Promise<File | null> {
    try {
      return await (await this.dir.getFileHandle(name)).getFile();
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  private async remove(name: string): Promise<void> {
    try {
      await this.dir.removeEntry(name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async size(key: string): Promise<number | null> {
    checkCacheKey(key);
    return (await this.file(key))?.size ?? null;
  }

  async read(key: string): Promise<Uint8Array> {
    checkCacheKey(key);
    const f = await this.file(key);
    if (!f) throw new PackCacheMissError(key, this.description);
    return new Uint8Array(await f.arrayBuffer());
  }

  async readRange(key: string, start: number, end: number): Promise<Uint8Array> {
    checkCacheKey(key);
    const f = await this.file(key);
    if (!f) throw new PackCacheMissError(key, this.description);
    checkRange(start, end, f.size, key);
    return new Uint8Array(await f.slice(start, end).arrayBuffer());
  }

  async *chunks(key: string, partial = false): AsyncIterable<Uint8Array> {
    checkCacheKey(key);
    const f = await this.file(partial ? `${key}.partial` : key);
    if (!f) return;
    const reader = f.stream().getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        yield value;
      }
    } finally {
      // A consumer that stops early (abort) must not leave the file's stream open.
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    checkCacheKey(key);
    const tmpName = `${key}.tmp`;
    const tmp = (await this.dir.getFileHandle(tmpName, { create: true })) as MovableHandle;
    try {
      await writeWhole(tmp, bytes);
    } catch (e) {
      await this.remove(tmpName);
      throw e;
    }
    await this.moveOnto(tmp, tmpName, key);
  }

  /** Moves a finished file onto `name` (replacing it); copies where move() is missing. */
  private async moveOnto(handle: MovableHandle, from: string, name: string): Promise<void> {
    if (typeof handle.move === 'function') {
      // Some implementations refuse to move onto an existing entry: clear it first. A crash
      // in between leaves the finished source file, which the loader re-verifies and commits.
      await this.remove(name);
      await handle.move(name);
      return;
    }
    const dest = await this.dir.getFileHandle(name, { create: true });
    await writeWhole(dest, (await handle.getFile()).stream());
    await this.remove(from);
  }

  async delete(key: string): Promise<void> {
    checkCacheKey(key);
    await this.remove(key);
    await this.remove(`${key}.partial`);
    await this.remove(`${key}.tmp`);
  }

  async partialSize(key: string): Promise<number> {
    checkCacheKey(key);
    return (await this.file(`${key}.partial`))?.size ?? 0;
  }

  async openPartial(key: string, truncate: boolean): Promise<PartialWriter> {
    checkCacheKey(key);
    const handle = await this.dir.getFileHandle(`${key}.partial`, { create: true });
    const sync = await trySyncAccessHandle(handle);
    if (sync) {
      if (truncate) sync.truncate(0);
      let at = sync.getSize();
      let sinceFlush = 0;
      let closed = false;
      return {
        write: async (chunk) => {
          for (let off = 0; off < chunk.length;) {
            const n = sync.write(chunk.subarray(off), { at });
            if (n <= 0) throw new DOMException('OPFS write made no progress (disk full?)', 'QuotaExceededError');
            off += n;
            at += n;
          }
          sinceFlush += chunk.length;
          if (sinceFlush >= CHECKPOINT_BYTES) {
            sync.flush();
            sinceFlush = 0;
          }
        },
        close: async () => {
          if (closed) return;
          closed = true;
          try {
            sync.flush();
          } finally {
            sync.close();
          }
        },
      };
    }
    // Main thread / shared worker: a writable, checkpointed by closing and reopening.
    if (typeof (handle as Partial<FileSystemFileHandle>).createWritable !== 'function') {
      throw new Error('OPFS: this browser can only write files from a dedicated worker; load packs in the worker');
    }
    const size = truncate ? 0 : (await handle.getFile()).size;
    let w = await handle.createWritable({ keepExistingData: !truncate });
    if (!truncate) await w.seek(size);
    let sinceCheckpoint = 0;
    let closed = false;
    return {
      write: async (chunk) => {
        await w.write(chunk as Uint8Array<ArrayBuffer>);
        sinceCheckpoint += chunk.length;
        if (sinceCheckpoint >= CHECKPOINT_BYTES) {
          await w.close();
          const at = (await handle.getFile()).size;
          w = await handle.createWritable({ keepExistingData: true });
          await w.seek(at);
          sinceCheckpoint = 0;
        }
      },
      close: async () => {
        if (closed) return;
        closed = true;
        await w.close();
      },
    };
  }

  async commitPartial(key: string, as: string = key): Promise<void> {
    checkCacheKey(key);
    checkCacheKey(as);
    const name = `${key}.partial`;
    let handle: MovableHandle;
    try {
      handle = await this.dir.getFileHandle(name);
    } catch (e) {
      if (isNotFound(e)) throw new PackCacheMissError(name, this.description);
      throw e;
    }
    await this.moveOnto(handle, name, as);
  }

  async deletePartial(key: string): Promise<void> {
    checkCacheKey(key);
    await this.remove(`${key}.partial`);
  }

  async keys(): Promise<string[]> {
    const out: string[] = [];
    const entries = (this.dir as unknown as { keys(): AsyncIterable<string> }).keys();
    for await (const name of entries) {
      if (!name.endsWith('.partial') && !name.endsWith('.tmp')) out.push(name);
    }
    return out;
  }

  async availableBytes(): Promise<number | null> {
    const est = await navigator.storage.estimate?.().catch(() => null);
    if (!est || est.quota === undefined || est.usage === undefined) return null;
    return Math.max(0, est.quota - est.usage);
  }

  /** Serializes downloads of one file across tabs and workers (Web Locks), where available. */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (!locks) return fn();
    return locks.request(`likeness-pack-cache:${key}`, { mode: 'exclusive' }, fn);
  }
}

/** A sync access handle exists only in dedicated workers; anywhere else (or when the file is busy) null. */
async function trySyncAccessHandle(handle: FileSystemFileHandle): Promise<FileSystemSyncAccessHandle | null> {
  const h = handle as FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<FileSystemSyncAccessHandle> };
  if (typeof h.createSyncAccessHandle !== 'function') return null;
  try {
    return await h.createSyncAccessHandle();
  } catch {
    return null;
  }
}

/**
 * Writes a whole file: through createWritable (its data lands atomically on close) where the
 * browser has it, else through a sync access handle (dedicated workers in Safari before
 * createWritable existed there).
 */
async function writeWhole(
  handle: FileSystemFileHandle,
  source: Uint8Array | ReadableStream<Uint8Array>,
): Promise<void> {
  if (typeof (handle as Partial<FileSystemFileHandle>).createWritable === 'function') {
    const w = await handle.createWritable({ keepExistingData: false });
    try {
      if (source instanceof Uint8Array) await w.write(source as Uint8Array<ArrayBuffer>);
      else await source.pipeTo(w, { preventClose: true });
      await w.close();
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
    return;
  }
  const sync = await trySyncAccessHandle(handle);
  if (!sync)
    throw new Error(
      'OPFS: this browser context can write files neither through createWritable nor a sync access handle',
    );
  try {
    sync.truncate(0);
    let at = 0;
    const put = (chunk: Uint8Array) => {
      for (let off = 0; off < chunk.length;) {
        const n = sync.write(chunk.subarray(off), { at });
        if (n <= 0) throw new DOMException('OPFS write made no progress (disk full?)', 'QuotaExceededError');
        off += n;
        at += n;
      }
    };
    if (source instanceof Uint8Array) put(source);
    else {
      const reader = source.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        put(value);
      }
    }
    sync.flush();
  } finally {
    sync.close();
  }
}
