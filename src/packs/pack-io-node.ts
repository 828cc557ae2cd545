// Node side of pack-io: sources are file handles read by position (any size: nothing is
// read whole), and the pack is written into a hidden sibling folder
// (`.<name>.building-<pid>-<random>`) that is renamed to the pack's folder at the end. A
// build that is interrupted, killed or fails leaves at most that hidden folder — never a
// folder with a manifest.json under the pack's name — and the next build of the same pack
// removes stale ones.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { PackFileSink, PackSink, RangedSource, SourceFolder } from './pack-io.ts';

/** Opens a file for ranged reads; close() releases the handle. */
export async function openNodeSource(path: string): Promise<RangedSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  const size = (await fh.stat()).size;
  return {
    name: path,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(out, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${path}: unexpected end of file at byte ${offset + got} (size ${size})`);
        got += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}

/** A folder on disk; opened files stay open until closeAll(). */
export function nodeFolder(root: string): SourceFolder & { closeAll(): Promise<void> } {
  const handles: { close(): Promise<void> }[] = [];
  return {
    name: root,
    async open(path) {
      const full = join(root, path);
      if (!existsSync(full) || !statSync(full).isFile()) return null;
      const src = await openNodeSource(full);
      handles.push(src);
      return src;
    },
    async closeAll() {
      await Promise.all(handles.splice(0).map((h) => h.close()));
    },
  };
}

/** The hidden staging folders of builds of `out` (finished or not, by any process). */
export function stagingFolders(out: string): string[] {
  const parent = dirname(resolve(out));
  if (!existsSync(parent)) return [];
  const prefix = `.${basename(resolve(out))}.building-`;
  return readdirSync(parent)
    .filter((n) => n.startsWith(prefix))
    .map((n) => join(parent, n));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Builds into `.<name>.building-<pid>-<random>` next to `out`; commit() swaps it in for
 * `out` (an existing pack there is replaced only then, by two renames).
 */
export function nodePackSink(out: string): PackSink & { readonly staging: string } {
  const target = resolve(out);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  // Leftovers of builds whose process is gone (killed, power loss) are removed.
  for (const stale of stagingFolders(target)) {
    const pid = Number(/building-(\d+)-/.exec(stale)?.[1]);
    if (!pidAlive(pid)) rmSync(stale, { recursive: true, force: true });
  }
  const staging = join(
    parent,
    `.${basename(target)}.building-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  );
  mkdirSync(staging);
  const open_ = new Set<FileHandle>();
  return {
    staging,
    async create(path): Promise<PackFileSink> {
      const full = join(staging, path);
      mkdirSync(dirname(full), { recursive: true });
      const fh = await open(full, 'w');
      open_.add(fh);
      return {
        async write(bytes) {
          let done = 0;
          while (done < bytes.length) done += (await fh.write(bytes, done, bytes.length - done)).bytesWritten;
        },
        async close() {
          open_.delete(fh);
          await fh.close();
        },
      };
    },
    async commit() {
      if (open_.size) throw new Error(`internal: ${open_.size} pack files still open at commit`);
      if (existsSync(target)) {
        const old = `${staging}-old`;
        renameSync(target, old);
        renameSync(staging, target);
        rmSync(old, { recursive: true, force: true });
      } else {
        renameSync(staging, target);
      }
    },
    async discard() {
      await Promise.all([...open_].map((fh) => fh.close().catch(() => {})));
      open_.clear();
      rmSync(staging, { recursive: true, force: true });
    },
  };
}
