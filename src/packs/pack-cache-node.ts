// Pack cache in a folder (Node: the CLI and tests). Complete entries are `<dir>/<key>`,
// downloads in progress `<dir>/<key>.partial`. put() writes `<key>.tmp-<random>`, fsyncs and
// renames, and commitPartial() fsyncs and renames: rename within a folder is atomic on POSIX
// file systems, so a crash leaves the old entry or the new one, never half of one.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCacheKey, checkRange, PackCacheMissError, type PackCache, type PartialWriter } from './pack-cache.ts';

const CHUNK = 1 << 20;

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

export class NodeFolderPackCache implements PackCache {
  readonly description: string;
  private ready: Promise<void> | null = null;

  constructor(readonly dir: string) {
    this.description = `folder ${dir}`;
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true }).then(() => undefined);
    return this.ready;
  }

  private path(key: string, partial = false): string {
    checkCacheKey(key);
    return join(this.dir, partial ? `${key}.partial` : key);
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.path(key))).size;
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async read(key: string): Promise<Uint8Array> {
    try {
      const h = await open(this.path(key), 'r');
      try {
        const { size } = await h.stat();
        const out = new Uint8Array(size);
        for (let at = 0; at < size;) {
          const { bytesRead } = await h.read(out, at, size - at, at);
          if (bytesRead === 0) throw new Error(`pack cache (${this.description}): ${key} shrank while being read`);
          at += bytesRead;
        }
        return out;
      } finally {
        await h.close();
      }
    } catch (e) {
      if (isMissing(e)) throw new PackCacheMissError(key, this.description);
      throw e;
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Uint8Array> {
    let h;
    try {
      h = await open(this.path(key), 'r');
    } catch (e) {
      if (isMissing(e)) throw new PackCacheMissError(key, this.description);
      throw e;
    }
    try {
      checkRange(start, end, (await h.stat()).size, key);
      const out = new Uint8Array(end - start);
      for (let at = 0; at < out.length;) {
        const { bytesRead } = await h.read(out, at, out.length - at, start + at);
        if (bytesRead === 0) throw new Error(`pack cache (${this.description}): ${key} shrank while being read`);
        at += bytesRead;
      }
      return out;
    } finally {
      await h.close();
    }
  }

  async *chunks(key: string, partial = false): AsyncIterable<Uint8Array> {
    let h;
    try {
      h = await open(this.path(key, partial), 'r');
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    try {
      for (let pos = 0; ;) {
        const buf = new Uint8Array(CHUNK);
        const { bytesRead } = await h.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) return;
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await h.close();
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const final = this.path(key);
    await this.ensureDir();
    const tmp = join(this.dir, `${key}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      const h = await open(tmp, 'wx', 0o644);
      try {
        await h.writeFile(bytes);
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
    await rm(this.path(key, true), { force: true });
  }

  async partialSize(key: string): Promise<number> {
    try {
      return (await stat(this.path(key, true))).size;
    } catch (e) {
      if (isMissing(e)) return 0;
      throw e;
    }
  }

  async openPartial(key: string, truncate: boolean): Promise<PartialWriter> {
    await this.ensureDir();
    const p = this.path(key, true);
    const flags = truncate
      ? fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC
      : fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND;
    const h = await open(p, flags, 0o644);
    let closed = false;
    return {
      write: async (chunk) => {
        for (let at = 0; at < chunk.length;) {
          const { bytesWritten } = await h.write(chunk, at, chunk.length - at);
          at += bytesWritten;
        }
      },
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await h.sync();
        } finally {
          await h.close();
        }
      },
    };
  }

  async commitPartial(key: string, as: string = key): Promise<void> {
    const p = this.path(key, true);
    try {
      // Data was fsynced by the writer's close(); the rename makes it the entry in one step.
      await rename(p, this.path(as));
    } catch (e) {
      if (isMissing(e)) throw new PackCacheMissError(`${key}.partial`, this.description);
      throw e;
    }
  }

  async deletePartial(key: string): Promise<void> {
    await rm(this.path(key, true), { force: true });
  }

  async keys(): Promise<string[]> {
    try {
      const names = await readdir(this.dir);
      return names.filter((n) => !n.endsWith('.partial') && !n.includes('.tmp-'));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  async availableBytes(): Promise<number | null> {
    await this.ensureDir();
    try {
      const s = await statfs(this.dir);
      return s.bavail * s.bsize;
    } catch {
      return null;
    }
  }

  /** Removes leftovers of interrupted put()s (never-renamed temp files). */
  async cleanTemporaries(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.includes('.tmp-')).map((n) => rm(join(this.dir, n), { force: true })));
  }
}
