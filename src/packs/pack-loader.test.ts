import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describePackFile, type Manifest } from './manifest.ts';
import { MemoryPackCache } from './pack-cache.ts';
import { NodeFolderPackCache } from './pack-cache-node.ts';
import { loadPackFromUrl, PackLoadError, packUrls, parseContentRange, type PackProgress } from './pack-loader.ts';
import { loadPack, loadPackFromFolder } from './pack-node.ts';
import { parseSafetensors } from './safetensors.ts';
import { makeTestPack, type TestPack } from '../../test/test-pack.ts';

const UNET = 'unet/diffusion_pytorch_model.safetensors';

interface ServeOptions {
  /** Honour Range requests (default true). */
  range?: boolean;
  chunkSize?: number;
  /** Pause between chunks, ms. */
  delayMs?: number;
  /** Omit Content-Length (chunked transfer). */
  chunked?: boolean;
  /** Destroy the connection after this many body bytes of the first response for this path. */
  dropAfter?: { path: string; bytes: number };
}

interface Served {
  path: string;
  range: string | undefined;
  status: number;
  /** Body bytes written to the socket. */
  bytes: number;
}

/** A static file server on 127.0.0.1 with switchable Range support that records what it served. */
class PackServer {
  readonly log: Served[] = [];
  options: ServeOptions = {};
  files = new Map<string, Uint8Array>();
  private server!: Server;
  private dropped = new Set<string>();
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${addr.port}/packs/tiny/`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(files: Map<string, Uint8Array>, options: ServeOptions = {}): void {
    this.files = files;
    this.options = options;
    this.log.length = 0;
    this.dropped.clear();
  }

  served(path: string): Served[] {
    return this.log.filter((s) => s.path === path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/packs\/tiny\//, '');
    const entry: Served = { path, range: req.headers.range, status: 0, bytes: 0 };
    this.log.push(entry);
    const body = this.files.get(path);
    const o = this.options;
    if (!body) {
      entry.status = 404;
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    let status = 200;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if ((o.range ?? true) && req.headers.range) {
      headers['accept-ranges'] = 'bytes';
      const m = /^bytes=(\d+)-$/.exec(req.headers.range);
      if (!m) throw new Error(`test server: unexpected range ${req.headers.range}`);
      start = Number(m[1]);
      if (start >= body.length) {
        entry.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    }
    if (!o.chunked) headers['content-length'] = String(body.length - start);
    entry.status = status;
    res.writeHead(status, headers);
    const chunk = o.chunkSize ?? 16 * 1024;
    const drop = o.dropAfter?.path === path && !this.dropped.has(path) ? o.dropAfter.bytes : Infinity;
    for (let at = start; at < body.length; at += chunk) {
      if (res.destroyed) return;
      let piece = body.subarray(at, Math.min(body.length, at + chunk));
      if (entry.bytes + piece.length > drop) {
        piece = piece.subarray(0, drop - entry.bytes);
        res.write(piece);
        entry.bytes += piece.length;
        this.dropped.add(path);
        await new Promise((r) => setTimeout(r, 5));
        res.socket?.destroy();
        return;
      }
      const ok = res.write(piece);
      entry.bytes += piece.length;
      if (!ok) await new Promise((r) => res.once('drain', r));
      if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
    }
    res.end();
  }
}

/** Byte equality without vitest's element-by-element deep equal (seconds on 256 KiB). */
function expectBytes(actual: Uint8Array, expected: Uint8Array | undefined, label = ''): void {
  if (!expected) throw new Error(`${label}: nothing to compare with`);
  expect(actual.length, `${label} length`).toBe(expected.length);
  if (
    Buffer.compare(
      Buffer.from(actual.buffer, actual.byteOffset, actual.length),
      Buffer.from(expected.buffer, expected.byteOffset, expected.length),
    ) !== 0
  ) {
    const i = actual.findIndex((b, j) => b !== expected[j]);
    throw new Error(`${label}: bytes differ first at ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

function expectMonotone(reports: PackProgress[]): void {
  for (let i = 1; i < reports.length; i++) {
    expect(reports[i].loadedBytes, `report ${i}`).toBeGreaterThanOrEqual(reports[i - 1].loadedBytes);
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const server = new PackServer();
let pack: TestPack;
let total: number;
const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'likeness-pack-test-'));
  tmpDirs.push(d);
  return d;
}

beforeAll(async () => {
  await server.start();
  pack = makeTestPack(1, 256);
  total = pack.manifest.files.reduce((s, f) => s + f.bytes, 0);
});
afterAll(async () => {
  await server.stop();
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});
afterEach(() => server.reset(new Map()));

describe('pack loader over HTTP', () => {
  it('downloads every file with monotone progress ending at the total, verified and readable', async () => {
    server.reset(pack.files, { delayMs: 1 });
    const reports: PackProgress[] = [];
    const cache = new MemoryPackCache();
    const loaded = await loadPackFromUrl(server.url, {
      cache,
      onProgress: (p) => reports.push(p),
      progressIntervalMs: 0,
    });
    expect(loaded.manifest.name).toBe('tiny-sd');
    expect(loaded.offline).toBe(false);
    for (const f of pack.manifest.files) expectBytes(await loaded.read(f.path), pack.files.get(f.path), f.path);
    const unet = parseSafetensors(await loaded.read(UNET));
    expect(unet.info('conv_in.weight').numel).toBe(256 * 256);
    expectBytes(await loaded.readRange(UNET, 8, 16), pack.files.get(UNET)!.subarray(8, 16));

    expectMonotone(reports);
    const last = reports.at(-1)!;
    expect(last).toMatchObject({ phase: 'done', loadedBytes: total, totalBytes: total, etaSeconds: 0 });
    expect(reports[0].phase).toBe('manifest');
    // Every file reported, each ending at its own size.
    for (const f of pack.manifest.files) {
      const mine = reports.filter((r) => r.file === f.path);
      expect(mine.length, f.path).toBeGreaterThan(0);
      expect(mine.at(-1)!.fileLoadedBytes).toBe(f.bytes);
    }
    // One plain request per file, each served once in full.
    for (const f of pack.manifest.files) {
      expect(server.served(f.path).map((s) => [s.status, s.range, s.bytes])).toEqual([[200, undefined, f.bytes]]);
    }
    await expect(loaded.read('nope.bin')).rejects.toThrow(/not a \(loaded\) file/);
  });

  it('reports a real rate and ETA on a slow server', async () => {
    const slow = makeTestPack(2, 64);
    server.reset(slow.files, { delayMs: 25, chunkSize: 4096 }); // ≥ 0.5 s in all: the rate needs a 0.25 s window
    const reports: PackProgress[] = [];
    await loadPackFromUrl(server.url, { onProgress: (p) => reports.push(p), progressIntervalMs: 0 });
    const rated = reports.filter((r) => r.phase === 'download' && r.bytesPerSecond > 0);
    expect(rated.length).toBeGreaterThan(0);
    for (const r of rated) {
      // 4 KiB per ≥ 25 ms is at most ~165 KB/s; allow slack for timer granularity but not nonsense.
      expect(r.bytesPerSecond).toBeLessThan(2_000_000);
      expect(r.etaSeconds).not.toBeNull();
      expect(r.etaSeconds!).toBeGreaterThanOrEqual(0);
      expect(r.etaSeconds!).toBeCloseTo((r.totalBytes - r.loadedBytes) / r.bytesPerSecond, 6);
    }
  });

  it('loads from the cache without downloading again, and offline from the cached manifest', async () => {
    server.reset(pack.files);
    const cache = new NodeFolderPackCache(await tmp());
    await loadPackFromUrl(server.url, { cache });
    server.reset(pack.files);
    const reports: PackProgress[] = [];
    const again = await loadPackFromUrl(server.url, { cache, onProgress: (p) => reports.push(p) });
    expect(server.log.map((s) => s.path)).toEqual(['manifest.json']);
    expect(reports.at(-1)).toMatchObject({ phase: 'done', loadedBytes: total });
    expectBytes(await again.read(UNET), pack.files.get(UNET));

    // Network gone: a fetch that fails like a browser's does offline.
    const offlineFetch = (() => Promise.reject(new TypeError('Failed to fetch'))) as typeof fetch;
    const offline = await loadPackFromUrl(server.url, { cache, fetch: offlineFetch });
    expect(offline.offline).toBe(true);
    expectBytes(await offline.read('tokenizer/merges.txt'), pack.files.get('tokenizer/merges.txt'));
    // Never loaded → a clear message.
    const e = await rejection(loadPackFromUrl(server.url, { cache: new MemoryPackCache(), fetch: offlineFetch }));
    expect(e).toBeInstanceOf(PackLoadError);
    expect(e.message).toMatch(/cannot fetch the pack manifest .*Failed to fetch.*no offline copy/);
  });

  it('resumes after an abort mid-file with a Range request, fetching only the missing bytes', async () => {
    server.reset(pack.files, { delayMs: 2, chunkSize: 8192 });
    const dir = await tmp();
    const cache = new NodeFolderPackCache(dir);
    const unet = pack.manifest.files.find((f) => f.path === UNET)!;
    const controller = new AbortController();
    const first = await rejection(
      loadPackFromUrl(server.url, {
        cache,
        signal: controller.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.file === UNET && p.fileLoadedBytes >= unet.bytes * 0.4) controller.abort();
        },
      }),
    );
    expect(first.name).toBe('AbortError');
    // Nothing under the final name; the partial holds what arrived.
    expect(await cache.size(unet.sha256)).toBeNull();
    const partial = await cache.partialSize(unet.sha256);
    expect(partial).toBeGreaterThanOrEqual(unet.bytes * 0.4);
    expect(partial).toBeLessThan(unet.bytes);
    expect((await stat(join(dir, `${unet.sha256}.partial`))).size).toBe(partial);
    const servedBefore = server.served(UNET).reduce((s, x) => s + x.bytes, 0);

    server.log.length = 0;
    const reports: PackProgress[] = [];
    const loaded = await loadPackFromUrl(server.url, {
      cache,
      onProgress: (p) => reports.push(p),
      progressIntervalMs: 0,
    });
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
    const resumed = server.served(UNET);
    expect(resumed.map((s) => [s.status, s.range])).toEqual([[206, `bytes=${partial}-`]]);
    expect(resumed[0].bytes).toBe(unet.bytes - partial);
    // Across both runs the server sent the file once, plus at most what was in flight at the abort.
    expect(servedBefore + resumed[0].bytes).toBeLessThan(unet.bytes + 256 * 1024);
    expectMonotone(reports);
    expect(reports.find((r) => r.file === UNET)!.fileLoadedBytes).toBe(partial);
    expect(reports.at(-1)).toMatchObject({ phase: 'done', loadedBytes: total });
    expect((await readdir(dir)).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    server.reset(pack.files, { delayMs: 2, chunkSize: 8192 });
    const cache = new NodeFolderPackCache(await tmp());
    const unet = pack.manifest.files.find((f) => f.path === UNET)!;
    const controller = new AbortController();
    await rejection(
      loadPackFromUrl(server.url, {
        cache,
        signal: controller.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.file === UNET && p.fileLoadedBytes >= unet.bytes / 2) controller.abort();
        },
      }),
    );
    const partial = await cache.partialSize(unet.sha256);
    expect(partial).toBeGreaterThan(0);

    server.reset(pack.files, { range: false });
    const loaded = await loadPackFromUrl(server.url, { cache });
    // It asked to resume, got the whole file (200) and wrote it from the start, not appended.
    expect(server.served(UNET).map((s) => [s.status, s.range, s.bytes])).toEqual([
      [200, `bytes=${partial}-`, unet.bytes],
    ]);
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
    expect(await cache.size(unet.sha256)).toBe(unet.bytes);
  });

  it('resumes by itself when the connection drops mid-file', async () => {
    server.reset(pack.files, { dropAfter: { path: UNET, bytes: 100_000 } });
    const loaded = await loadPackFromUrl(server.url, { retryDelayMs: 0 });
    const log = server.served(UNET);
    expect(log.length).toBe(2);
    expect(log[0].bytes).toBe(100_000);
    expect(log[1].status).toBe(206);
    expect(Number(/^bytes=(\d+)-$/.exec(log[1].range!)![1])).toBeLessThanOrEqual(100_000);
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
  });

  it('refuses a file whose sha256 differs, naming the file and both hashes, and keeps nothing of it', async () => {
    const files = new Map(pack.files);
    const bad = files.get('vae/diffusion_pytorch_model.safetensors')!.slice();
    bad[bad.length - 1] ^= 1;
    files.set('vae/diffusion_pytorch_model.safetensors', bad);
    server.reset(files);
    const cache = new MemoryPackCache();
    const e = await rejection(loadPackFromUrl(server.url, { cache }));
    expect(e).toBeInstanceOf(PackLoadError);
    const err = e as PackLoadError;
    const vae = pack.manifest.files.find((f) => f.component === 'vae')!;
    expect(err.code).toBe('sha256-mismatch');
    expect(err.file).toBe(vae.path);
    expect(err.message).toContain(
      `vae/diffusion_pytorch_model.safetensors: sha256 mismatch: expected ${vae.sha256}, got `,
    );
    expect(err.details.actual).toMatch(/^[0-9a-f]{64}$/);
    expect(err.details.actual).not.toBe(vae.sha256);
    expect(await cache.size(vae.sha256)).toBeNull();
    expect(await cache.partialSize(vae.sha256)).toBe(0);
  });

  it('a stale partial that no longer matches is re-downloaded in full once', async () => {
    server.reset(pack.files);
    const cache = new MemoryPackCache();
    const unet = pack.manifest.files.find((f) => f.path === UNET)!;
    const w = await cache.openPartial(unet.sha256, true);
    await w.write(new Uint8Array(5000).fill(7)); // not the file's first bytes
    await w.close();
    const loaded = await loadPackFromUrl(server.url, { cache });
    expect(server.served(UNET).map((s) => [s.status, s.range])).toEqual([
      [206, 'bytes=5000-'],
      [200, undefined],
    ]);
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
  });

  it('refuses a file truncated on the server (with and without Content-Length)', async () => {
    const files = new Map(pack.files);
    const unet = pack.manifest.files.find((f) => f.path === UNET)!;
    files.set(UNET, pack.files.get(UNET)!.subarray(0, 200_000));
    server.reset(files);
    const e = await rejection(loadPackFromUrl(server.url, { retryDelayMs: 0 }));
    expect(e).toMatchObject({ code: 'size-mismatch', file: UNET });
    expect(e.message).toBe(
      `${UNET}: the server's file has 200000 bytes but the manifest says ${unet.bytes} (truncated on the server?)`,
    );

    server.reset(files, { chunked: true });
    const e2 = await rejection(loadPackFromUrl(server.url, { retryDelayMs: 0 }));
    expect(e2).toMatchObject({ code: 'size-mismatch', file: UNET });
    expect(server.served(UNET).map((s) => [s.status, s.range])).toEqual([
      [200, undefined],
      [416, 'bytes=200000-'],
    ]);
  });

  it('refuses a server file longer than the manifest says', async () => {
    const files = new Map(pack.files);
    const longer = new Uint8Array(pack.files.get('tokenizer/merges.txt')!.length + 3);
    longer.set(pack.files.get('tokenizer/merges.txt')!);
    files.set('tokenizer/merges.txt', longer);
    server.reset(files, { chunked: true });
    const e = await rejection(loadPackFromUrl(server.url));
    expect(e).toMatchObject({ code: 'size-mismatch', file: 'tokenizer/merges.txt' });
    expect(e.message).toMatch(/sent more than the \d+ bytes the manifest lists/);
  });

  it('names the file on HTTP errors, and retries server errors', async () => {
    const files = new Map(pack.files);
    files.delete('image_encoder/model.safetensors');
    server.reset(files);
    const e = await rejection(loadPackFromUrl(server.url));
    expect(e).toMatchObject({ code: 'http', file: 'image_encoder/model.safetensors', details: { status: 404 } });
    expect(e.message).toMatch(/^image_encoder\/model\.safetensors: not found on the server/);

    // 503 twice, then fine.
    let failures = 2;
    const flaky: typeof fetch = async (input, init) => {
      if ((input instanceof Request ? input.url : input.toString()).endsWith('merges.txt') && failures-- > 0)
        return new Response('busy', { status: 503 });
      return fetch(input, init);
    };
    server.reset(pack.files);
    const loaded = await loadPackFromUrl(server.url, { fetch: flaky, retryDelayMs: 0 });
    expectBytes(await loaded.read('tokenizer/merges.txt'), pack.files.get('tokenizer/merges.txt'));
  });

  it('refuses an invalid manifest, and one whose hash differs from the expected', async () => {
    const files = new Map(pack.files);
    files.set(
      'manifest.json',
      new TextEncoder().encode(pack.manifestText.replace('"imageSize": 16', '"imageSize": 17')),
    );
    server.reset(files);
    const e = await rejection(loadPackFromUrl(server.url));
    expect(e).toMatchObject({ code: 'manifest' });
    expect(e.message).toMatch(/latentSize: imageSize 17/);
    server.reset(pack.files);
    const e2 = await rejection(loadPackFromUrl(`${server.url}manifest.json`, { manifestSha256: '0'.repeat(64) }));
    expect(e2).toMatchObject({ code: 'sha256-mismatch', file: 'manifest.json' });
  });

  it('refuses to start when the cache has no room, saying how much is needed', async () => {
    server.reset(pack.files);
    const cache = new MemoryPackCache() as MemoryPackCache & { availableBytes(): Promise<number> };
    cache.availableBytes = async () => 1000;
    const e = await rejection(loadPackFromUrl(server.url, { cache }));
    expect(e).toMatchObject({ code: 'disk-full' });
    expect(e.message).toMatch(/needs \d+(\.\d)? KiB more and memory has 1000 B free/);
  });

  it('re-verifies cached files on request and replaces a corrupted one', async () => {
    server.reset(pack.files);
    const dir = await tmp();
    const cache = new NodeFolderPackCache(dir);
    await loadPackFromUrl(server.url, { cache });
    const vae = pack.manifest.files.find((f) => f.component === 'vae')!;
    const onDisk = await readFile(join(dir, vae.sha256));
    onDisk[100] ^= 0xff; // same size, different bytes: only the hash can tell
    await writeFile(join(dir, vae.sha256), onDisk);
    server.reset(pack.files);
    await loadPackFromUrl(server.url, { cache });
    expect(server.served(vae.path)).toEqual([]); // size check alone trusts it
    const again = await loadPackFromUrl(server.url, { cache, verifyCached: true });
    expect(server.served(vae.path).map((s) => s.status)).toEqual([200]);
    expectBytes(await again.read(vae.path), pack.files.get(vae.path));
  });

  it('loads only the files asked for', async () => {
    server.reset(pack.files);
    const loaded = await loadPackFromUrl(server.url, { include: (f) => f.role === 'tokenizer' });
    expect(loaded.files.map((f) => f.path)).toEqual(['tokenizer/merges.txt']);
    expect(server.log.map((s) => s.path)).toEqual(['manifest.json', 'tokenizer/merges.txt']);
  });
});

describe('pack loader: folders and the folder cache', () => {
  async function writePack(p: TestPack): Promise<string> {
    const dir = await tmp();
    for (const [path, bytes] of p.files) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), bytes);
    }
    return dir;
  }

  it('loads a pack folder, verifying every file; names the bad one', async () => {
    const dir = await writePack(pack);
    const reports: PackProgress[] = [];
    const loaded = await loadPack(dir, { onProgress: (p) => reports.push(p) });
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
    expectBytes(await loaded.readRange(UNET, 3, 11), pack.files.get(UNET)!.subarray(3, 11));
    expectMonotone(reports);
    expect(reports.at(-1)).toMatchObject({ phase: 'done', loadedBytes: total, totalBytes: total });

    const merges = join(dir, 'tokenizer/merges.txt');
    const text = await readFile(merges, 'utf8');
    await writeFile(merges, text.replace('i n', 'i m'));
    await expect(loadPackFromFolder(dir)).rejects.toThrow(
      /^tokenizer\/merges\.txt: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}$/,
    );
    await writeFile(merges, text + 'x');
    await expect(loadPackFromFolder(dir)).rejects.toThrow(
      /tokenizer\/merges\.txt: the file has \d+ bytes but the manifest says \d+/,
    );
    await rm(merges);
    await expect(loadPackFromFolder(dir)).rejects.toThrow(/tokenizer\/merges\.txt: missing from the pack folder/);
    await expect(loadPackFromFolder(join(dir, 'nowhere'))).rejects.toThrow(/no manifest\.json in/);
  });

  it('loadPack picks URL or folder, with a folder cache for URLs', async () => {
    server.reset(pack.files);
    const cacheDir = await tmp();
    const loaded = await loadPack(server.url, { cacheDir });
    expectBytes(await loaded.read(UNET), pack.files.get(UNET));
    const names = await readdir(cacheDir);
    for (const f of pack.manifest.files) expect(names).toContain(f.sha256);
    expect(names.filter((n) => n.startsWith('manifest-'))).toHaveLength(1);
  });

  it('folder cache: atomic put, partial append/truncate, commit, ranges, keys', async () => {
    const dir = await tmp();
    const c = new NodeFolderPackCache(dir);
    await c.put('k1', new Uint8Array([1, 2, 3]));
    await c.put('k1', new Uint8Array([4, 5, 6, 7]));
    expect(await c.read('k1')).toEqual(new Uint8Array([4, 5, 6, 7]));
    expect(await c.readRange('k1', 1, 3)).toEqual(new Uint8Array([5, 6]));
    await expect(c.readRange('k1', 2, 9)).rejects.toThrow(RangeError);
    let w = await c.openPartial('k2', true);
    await w.write(new Uint8Array([9, 9]));
    await w.close();
    w = await c.openPartial('k2', false);
    await w.write(new Uint8Array([8]));
    await w.close();
    expect(await c.partialSize('k2')).toBe(3);
    const parts: number[] = [];
    for await (const ch of c.chunks('k2', true)) parts.push(...ch);
    expect(parts).toEqual([9, 9, 8]);
    expect((await c.keys()).sort()).toEqual(['k1']);
    w = await c.openPartial('k2', true);
    await w.write(new Uint8Array([5]));
    await w.close();
    await c.commitPartial('k2');
    expect(await c.read('k2')).toEqual(new Uint8Array([5]));
    expect(await c.partialSize('k2')).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['k1', 'k2']);
    await c.delete('k1');
    expect(await c.size('k1')).toBeNull();
    await expect(c.size('../x')).rejects.toThrow(/invalid key/);
    expect(await c.availableBytes()).toBeGreaterThan(0);
  });
});

describe('pack loader helpers', () => {
  it('packUrls and parseContentRange', () => {
    expect(packUrls('https://h/p/tiny')).toEqual({
      manifest: 'https://h/p/tiny/manifest.json',
      root: 'https://h/p/tiny/',
    });
    expect(packUrls('https://h/p/tiny/m.json')).toEqual({
      manifest: 'https://h/p/tiny/m.json',
      root: 'https://h/p/tiny/',
    });
    expect(parseContentRange('bytes 5-9/10')).toEqual({ start: 5, end: 9, total: 10 });
    expect(parseContentRange('bytes */10')).toEqual({ start: null, end: null, total: 10 });
    expect(parseContentRange('bytes 0-1/*')).toEqual({ start: 0, end: 1, total: null });
    expect(parseContentRange('items 0-1/2')).toBeNull();
  });

  it('describePackFile hashes and sizes the bytes', () => {
    const f = describePackFile('a/b.txt', 'other', new TextEncoder().encode('abc'));
    expect(f).toEqual({
      path: 'a/b.txt',
      role: 'other',
      bytes: 3,
      sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    });
    expect(() => describePackFile('../x', 'other', new Uint8Array())).toThrow(/".." segment/);
  });

  it('the test pack manifest is valid', () => {
    const m: Manifest = pack.manifest;
    expect(m.files).toHaveLength(5);
  });
});
