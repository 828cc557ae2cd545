// CachePackSink: a pack written file by file, in pieces, straight into a pack cache, then
// loaded by the verifying loader from that cache — and nothing left behind by a discarded
// build. Checked on the memory cache and the Node folder cache (OPFS runs the same code in
// the browser test, e2e/build-pack.e2e.ts).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyPackWithoutEncoderDir } from '../../test/tiny-pack.ts';
import { parseManifest } from './manifest.ts';
import { MemoryPackCache, type PackCache } from './pack-cache.ts';
import { NodeFolderPackCache } from './pack-cache-node.ts';
import { CachePackSink } from './pack-sink-cache.ts';
import { sha256Hex } from './sha256.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes the files of a built pack folder through the sink, in 1000-byte pieces, manifest last. */
async function writePack(sink: CachePackSink, dir: string): Promise<Map<string, Uint8Array>> {
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = new Map<string, Uint8Array>();
  for (const f of [...manifest.files.map((f) => f.path), 'manifest.json']) {
    const bytes = new Uint8Array(readFileSync(join(dir, f)));
    files.set(f, bytes);
    const out = await sink.create(f);
    for (let at = 0; at < bytes.length; at += 1000) await out.write(bytes.subarray(at, at + 1000));
    await out.close();
  }
  return files;
}

const caches: [string, () => PackCache][] = [
  ['memory', () => new MemoryPackCache()],
  [
    'Node folder',
    () => {
      const d = mkdtempSync(join(tmpdir(), 'likeness-sink-'));
      dirs.push(d);
      return new NodeFolderPackCache(d);
    },
  ],
];

describe.each(caches)('CachePackSink on the %s cache', (_, makeCache) => {
  it('writes each file under its sha256, and the committed pack loads with the same bytes', async () => {
    const cache = makeCache();
    const sink = new CachePackSink(cache, 'test');
    const files = await writePack(sink, tinyPackWithoutEncoderDir());
    await sink.commit();
    const pack = await sink.load();
    expect(pack.manifest.name).toBe('tiny-no-encoder');
    for (const f of pack.manifest.files) {
      expect(await cache.size(f.sha256)).toBe(f.bytes);
      expect(sha256Hex(await pack.read(f.path))).toBe(sha256Hex(files.get(f.path)!));
    }
    // Only content entries and the loader's manifest entry: no partials, no build leftovers.
    const keys = (await cache.keys()).sort();
    expect(keys.filter((k) => k.startsWith('build-'))).toEqual([]);
    expect(keys.length).toBe(pack.manifest.files.length + 1);
    expect(await cache.partialSize('build-test-0')).toBe(0);
  });

  it('discard removes what the build wrote, but not entries that were there before', async () => {
    const cache = makeCache();
    const dir = tinyPackWithoutEncoderDir();
    const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const shared = manifest.files[0];
    await cache.put(shared.sha256, new Uint8Array(readFileSync(join(dir, shared.path))));
    const sink = new CachePackSink(cache, 'gone');
    await writePack(sink, dir);
    // A file left open mid-write, as when a build is cancelled.
    const open = await sink.create('unet/extra.bin');
    await open.write(new Uint8Array(10));
    await sink.discard();
    expect(await cache.keys()).toEqual([shared.sha256]);
    expect(await cache.partialSize('build-gone-' + manifest.files.length)).toBe(0);
    await expect(sink.create('x')).rejects.toThrow(/after discard/);
  });

  it('refuses to commit without a manifest or with a file still open', async () => {
    const sink = new CachePackSink(makeCache(), 'early');
    await expect(sink.commit()).rejects.toThrow(/without a manifest/);
    const m = await sink.create('manifest.json');
    await m.write(new TextEncoder().encode('{}'));
    await m.close();
    await sink.create('text_encoder/model.safetensors');
    await expect(sink.commit()).rejects.toThrow(/still open/);
    await sink.discard();
  });
});

describe('CachePackSink, Node folder cache', () => {
  it('leaves no .partial files behind after a build', async () => {
    const d = mkdtempSync(join(tmpdir(), 'likeness-sink-'));
    dirs.push(d);
    const sink = new CachePackSink(new NodeFolderPackCache(d), 'files');
    await writePack(sink, tinyPackWithoutEncoderDir());
    await sink.commit();
    expect(readdirSync(d).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });
});
