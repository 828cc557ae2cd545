// Where downloaded pack files live. Entries are keyed by content (the file's sha256, or
// "manifest-<hash of its URL>"), so a file shared by two packs is stored once and an entry
// never changes meaning. Three implementations: in memory (tests), a folder (Node: CLI and
// tests, pack-cache-node.ts) and OPFS (browser, pack-cache-opfs.ts).
//
// The contract that keeps a crash from corrupting anything:
//  - a complete entry only ever appears whole (put() and commitPartial() are atomic), and
//    only after the loader verified its sha256;
//  - a download in progress lives in a separate partial entry that may be cut anywhere; the
//    loader resumes it (re-hashing what is there) or throws it away.
import { PackError } from '../domain/errors.ts';

export interface PartialWriter {
  /** Appends to the partial entry. */
  write(chunk: Uint8Array): Promise<void>;
  /** Flushes and closes; what was written stays in the partial entry (for resume). */
  close(): Promise<void>;
}

export interface PackCache {
  /** For messages: "memory", "folder /path", "OPFS". */
  readonly description: string;
  /** Size of the complete entry, or null when there is none. */
  size(key: string): Promise<number | null>;
  read(key: string): Promise<Uint8Array>;
  /** Bytes [start, end) of a complete entry. */
  readRange(key: string, start: number, end: number): Promise<Uint8Array>;
  /** A complete (or, with partial = true, the partial) entry in chunks; nothing when absent. */
  chunks(key: string, partial?: boolean): AsyncIterable<Uint8Array>;
  /** Stores a complete entry atomically (readers see the old entry or the new one, never half). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Removes the complete and the partial entry (absent ones are fine). */
  delete(key: string): Promise<void>;
  /** Bytes of the partial entry, 0 when there is none. */
  partialSize(key: string): Promise<number>;
  /** Opens the partial entry for appending; truncate = start it over. */
  openPartial(key: string, truncate: boolean): Promise<PartialWriter>;
  /**
   * Atomically turns the (closed) partial entry into the complete one, replacing any old
   * one; `as` names the complete entry when it differs (a pack built in place learns its
   * file's sha256, the entry's key, only once the file is written).
   */
  commitPartial(key: string, as?: string): Promise<void>;
  deletePartial(key: string): Promise<void>;
  /** Complete entries' keys. */
  keys(): Promise<string[]>;
  /** Free space for new entries, or null when unknown. */
  availableBytes?(): Promise<number | null>;
  /** Runs fn while holding an exclusive lock on key (across tabs where the platform can). */
  withLock?<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

const KEY_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Keys become file names: keep them to a safe alphabet and away from the .partial/.tmp suffixes. */
export function checkCacheKey(key: string): void {
  if (!KEY_RE.test(key) || /\.(partial|tmp)$/.test(key) || key.includes('.tmp-')) {
    throw new Error(`pack cache: invalid key ${JSON.stringify(key)}`);
  }
}

export class PackCacheMissError extends PackError {
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(`pack cache (${where}): no entry ${JSON.stringify(key)}`);
    this.name = 'PackCacheMissError';
  }
}

/** Everything in memory; partial entries are chunk lists. For tests and short-lived tools. */
export class MemoryPackCache implements PackCache {
  readonly description = 'memory';
  private readonly complete = new Map<string, Uint8Array>();
  private readonly partial = new Map<string, Uint8Array[]>();

  async size(key: string): Promise<number | null> {
    checkCacheKey(key);
    return this.complete.get(key)?.length ?? null;
  }

  async read(key: string): Promise<Uint8Array> {
    checkCacheKey(key);
    const bytes = this.complete.get(key);
    if (!bytes) throw new PackCacheMissError(key, this.description);
    return bytes;
  }

  async readRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const bytes = await this.read(key);
    checkRange(start, end, bytes.length, key);
    return bytes.subarray(start, end);
  }

  async *chunks(key: string, partial = false): AsyncIterable<Uint8Array> {
    checkCacheKey(key);
    if (partial) yield* this.partial.get(key) ?? [];
    else {
      const bytes = this.complete.get(key);
      if (bytes) yield bytes;
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    checkCacheKey(key);
    this.complete.set(key, bytes.slice());
  }

  async delete(key: string): Promise<void> {
    checkCacheKey(key);
    this.complete.delete(key);
    this.partial.delete(key);
  }

  async partialSize(key: string): Promise<number> {
    checkCacheKey(key);
    return (this.partial.get(key) ?? []).reduce((s, c) => s + c.length, 0);
  }

  async openPartial(key: string, truncate: boolean): Promise<PartialWriter> {
    checkCacheKey(key);
    if (truncate || !this.partial.has(key)) this.partial.set(key, []);
    const list = this.partial.get(key)!;
    return {
      write: async (chunk) => {
        list.push(chunk.slice());
      },
      close: async () => {},
    };
  }

  async commitPartial(key: string, as: string = key): Promise<void> {
    checkCacheKey(key);
    checkCacheKey(as);
    const list = this.partial.get(key);
    if (!list) throw new PackCacheMissError(`${key}.partial`, this.description);
    const total = list.reduce((s, c) => s + c.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of list) {
      bytes.set(c, at);
      at += c.length;
    }
    this.complete.set(as, bytes);
    this.partial.delete(key);
  }

  async deletePartial(key: string): Promise<void> {
    checkCacheKey(key);
    this.partial.delete(key);
  }

  async keys(): Promise<string[]> {
    return [...this.complete.keys()];
  }
}

export function checkRange(start: number, end: number, size: number, key: string): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > size) {
    throw new RangeError(`pack cache: range [${start}, ${end}) outside entry ${JSON.stringify(key)} of ${size} bytes`);
  }
}
