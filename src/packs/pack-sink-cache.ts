// A PackSink that builds a pack straight into a PackCache (OPFS in the browser): each pack
// file streams into a partial cache entry while its sha256 is computed, and becomes the
// complete entry under that hash when it is closed — the very entry the loader looks up —
// so a pack built in the browser is written once, never held whole in memory, and loads
// like a downloaded one. manifest.json (small) is kept in memory until commit.
//
// Until commit nothing that looks like a pack exists: only content-addressed entries, which
// discard() removes again (those this build created; entries that were already there, e.g.
// a file shared with another pack, are left alone).
import { loadPackFromUrl, type LoadedPack, type PackProgress } from './pack-loader.ts';
import type { PackCache, PartialWriter } from './pack-cache.ts';
import type { PackFileSink, PackSink } from './pack-io.ts';
import { Sha256, sha256Hex, toHex } from './sha256.ts';

/** A pseudo-origin for built packs: never fetched over the network. */
const BUILT_ORIGIN = 'https://built-pack.invalid';

export class CachePackSink implements PackSink {
  private readonly buildId: string;
  private next = 0;
  /** Entries this build created (complete, by sha256) and partials still open. */
  private readonly created = new Set<string>();
  /** Partial entries still open, with their writers: discard closes them before deleting (an
   *  open OPFS sync access handle locks its file against removal). */
  private readonly partials = new Map<string, PartialWriter | null>();
  private manifestBytes: Uint8Array | null = null;
  private state: 'open' | 'committed' | 'discarded' = 'open';

  constructor(
    private readonly cache: PackCache,
    buildId: string = Math.random().toString(36).slice(2, 10),
  ) {
    this.buildId = buildId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40) || 'build';
  }

  async create(path: string): Promise<PackFileSink> {
    if (this.state !== 'open')
      throw new Error(`pack sink: create(${path}) after ${this.state === 'committed' ? 'commit' : 'discard'}`);
    if (path === 'manifest.json') return this.manifestSink();
    const tmpKey = `build-${this.buildId}-${this.next++}`;
    this.partials.set(tmpKey, null);
    let writer: PartialWriter;
    try {
      writer = await this.cache.openPartial(tmpKey, true);
    } catch (e) {
      this.partials.delete(tmpKey);
      throw e;
    }
    this.partials.set(tmpKey, writer);
    const hash = new Sha256();
    let bytes = 0;
    let closed = false;
    return {
      write: async (chunk) => {
        if (closed) throw new Error(`pack sink: write to ${path} after close`);
        hash.update(chunk);
        bytes += chunk.length;
        await writer.write(chunk);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        await writer.close();
        const key = toHex(hash.digest());
        if ((await this.cache.size(key)) === bytes) {
          // The same bytes are already cached (another pack, or an earlier build): keep those.
          await this.cache.deletePartial(tmpKey);
        } else {
          await this.cache.commitPartial(tmpKey, key);
          this.created.add(key);
        }
        this.partials.delete(tmpKey);
      },
    };
  }

  private manifestSink(): PackFileSink {
    const chunks: Uint8Array[] = [];
    return {
      write: async (chunk) => {
        chunks.push(chunk.slice());
      },
      close: async () => {
        const n = chunks.reduce((s, c) => s + c.length, 0);
        const out = new Uint8Array(n);
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        this.manifestBytes = out;
      },
    };
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new Error(`pack sink: commit after ${this.state}`);
    if (!this.manifestBytes) throw new Error('pack sink: commit without a manifest.json');
    if (this.partials.size > 0) throw new Error(`pack sink: commit with ${this.partials.size} file(s) still open`);
    this.state = 'committed';
  }

  async discard(): Promise<void> {
    if (this.state === 'committed') return;
    this.state = 'discarded';
    for (const [key, writer] of this.partials) {
      await writer?.close().catch(() => undefined);
      await this.cache.deletePartial(key).catch(() => undefined);
    }
    for (const key of this.created) await this.cache.delete(key).catch(() => undefined);
    this.partials.clear();
    this.created.clear();
  }

  /** The committed manifest's URL: unique to its bytes, served only by `manifestFetch`. */
  get manifestUrl(): string {
    if (this.state !== 'committed' || !this.manifestBytes) throw new Error('pack sink: not committed');
    return `${BUILT_ORIGIN}/${sha256Hex(this.manifestBytes).slice(0, 24)}/manifest.json`;
  }

  /** A fetch that answers the manifest URL (every pack file is already in the cache). */
  readonly manifestFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    init?.signal?.throwIfAborted();
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (this.state === 'committed' && this.manifestBytes && url === this.manifestUrl) {
      return new Response(this.manifestBytes.slice(), { status: 200, headers: { 'content-type': 'application/json' } });
    }
    return new Response(null, { status: 404, statusText: 'Not Found' });
  };

  /** Loads the committed pack through the verifying loader (its files are found in the cache). */
  load(options: { signal?: AbortSignal; onProgress?: (p: PackProgress) => void } = {}): Promise<LoadedPack> {
    return loadPackFromUrl(this.manifestUrl, {
      cache: this.cache,
      fetch: this.manifestFetch,
      ...options,
    });
  }
}
