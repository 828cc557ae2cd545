import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryPackCache } from '../packs/pack-cache.ts';
import { loadPackFromUrl, PackLoadError, type PackProgress } from '../packs/pack-loader.ts';
import { tinyPackDir } from '../../test/tiny-pack.ts';
import {
  bundledManifestUrl,
  filesSource,
  manifestHash,
  openPackCache,
  packSummary,
  resolvePackSource,
  toDownloadProgress,
} from './pack-source.ts';

/** A folder as the browser's folder picker gives it: Files with webkitRelativePath. */
function pickFolder(dir: string, folderName: string, change?: (path: string, bytes: Buffer) => Buffer): File[] {
  const out: File[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const rel = relative(dir, full).split('\\').join('/');
        const bytes = change ? change(rel, readFileSync(full)) : readFileSync(full);
        const f = new File([new Uint8Array(bytes)], name);
        Object.defineProperty(f, 'webkitRelativePath', { value: `${folderName}/${rel}` });
        out.push(f);
      }
    }
  };
  walk(dir);
  return out;
}

describe('pack sources', () => {
  it('finds the bundled pack below the app base, from the worker script in assets/', () => {
    const worker = 'https://x.test/assets/engine-worker-abc.js';
    expect(bundledManifestUrl('/', worker)).toBe('https://x.test/models/tiny/manifest.json');
    expect(bundledManifestUrl('/likeness/', 'https://x.test/likeness/assets/w.js')).toBe(
      'https://x.test/likeness/models/tiny/manifest.json',
    );
    expect(bundledManifestUrl('./', 'https://x.test/sub/assets/w.js')).toBe(
      'https://x.test/sub/models/tiny/manifest.json',
    );
  });

  it('accepts http(s) addresses only', () => {
    expect(resolvePackSource({ kind: 'url', url: 'https://e.test/p/manifest.json' }).url).toBe(
      'https://e.test/p/manifest.json',
    );
    expect(() => resolvePackSource({ kind: 'url', url: 'ftp://e.test/p' })).toThrow(PackLoadError);
    expect(() => resolvePackSource({ kind: 'url', url: 'not a url' })).toThrow(/not a web address/);
    expect(resolvePackSource({ kind: 'bundled' }, () => 'https://x.test/models/tiny/manifest.json').url).toBe(
      'https://x.test/models/tiny/manifest.json',
    );
  });

  it('serves a picked folder like a server: whole files, ranges, 404 and 416', async () => {
    const src = filesSource(pickFolder(tinyPackDir(), 'tiny'));
    const manifestBytes = readFileSync(join(tinyPackDir(), 'manifest.json'));
    const res = await src.fetch!(src.url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(manifestBytes);
    const part = await src.fetch!(new URL('manifest.json', src.url), { headers: { Range: 'bytes=100-' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-${manifestBytes.length - 1}/${manifestBytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(manifestBytes.subarray(100));
    expect((await src.fetch!(new URL('nope.bin', src.url))).status).toBe(404);
    expect((await src.fetch!(src.url, { headers: { Range: `bytes=${manifestBytes.length}-` } })).status).toBe(416);
    expect(() => filesSource([new File(['x'], 'a.txt')])).toThrow(/no manifest\.json/);
  });

  it('loads a picked folder through the verifying loader, and refuses a changed file', async () => {
    const progress: PackProgress[] = [];
    const src = filesSource(pickFolder(tinyPackDir(), 'my pack'));
    const pack = await loadPackFromUrl(src.url, {
      cache: new MemoryPackCache(),
      fetch: src.fetch,
      onProgress: (p) => progress.push(p),
    });
    expect(pack.manifest.name).toBe('tiny');
    const total = pack.manifest.files.reduce((n, f) => n + f.bytes, 0);
    expect(toDownloadProgress(progress.at(-1)!)).toEqual({
      phase: 'done',
      file: '',
      loadedBytes: total,
      totalBytes: total,
      bytesPerSecond: expect.any(Number),
      etaSeconds: 0,
    });
    expect(toDownloadProgress(progress[0]).file).toBe('manifest.json');
    expect(await pack.read('tokenizer/merges.txt')).toEqual(
      new Uint8Array(readFileSync(join(tinyPackDir(), 'tokenizer/merges.txt'))),
    );

    const bad = filesSource(
      pickFolder(tinyPackDir(), 'bad', (path, bytes) => {
        if (path !== 'tokenizer/merges.txt') return bytes;
        const copy = Buffer.from(bytes);
        copy[10] ^= 1;
        return copy;
      }),
    );
    await expect(loadPackFromUrl(bad.url, { cache: new MemoryPackCache(), fetch: bad.fetch })).rejects.toThrow(
      /tokenizer\/merges\.txt: sha256 mismatch/,
    );
  });

  it('falls back to memory when OPFS cannot be opened, and says so', async () => {
    const opened = await openPackCache(async () => {
      throw new Error('no OPFS here');
    });
    expect(opened.kind).toBe('memory');
    expect(opened.cache).toBeInstanceOf(MemoryPackCache);
    expect(opened.note).toMatch(/no OPFS here.*memory only.*downloaded again.*not available offline/);
  });

  it('summarises a pack for the UI, with what strict concept import needs', () => {
    const m = JSON.parse(readFileSync(join(tinyPackDir(), 'manifest.json'), 'utf8'));
    const s = packSummary(m, manifestHash(m), { cache: new MemoryPackCache(), kind: 'memory', note: 'n' }, false);
    expect(s).toMatchObject({
      id: 'tiny',
      imageSize: 16,
      placeholderDefault: 'S*',
      hasTuningEncoder: true,
      tuningEncoderTrained: false,
      tuningSteps: 12,
      tokenDim: 32,
      rank: 4,
      storage: 'memory',
      storageNote: 'n',
      offline: false,
      description: m.description,
      defaults: { steps: 25, guidance: 7.5, sampler: 'dpmpp-2m', blend: 0.25, batch: 1 },
    });
    expect(s.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(s.loraTargets).toHaveLength(32);
    expect(s.loraTargets[0]).toEqual({
      module: 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q',
      in: 32,
      out: 32,
    });
    expect(s.totalBytes).toBe(m.files.reduce((n: number, f: { bytes: number }) => n + f.bytes, 0));
  });
});
