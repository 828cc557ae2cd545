// The worker's "build from a model on this device" in Node, on a real engine: picked files
// (File objects with webkitRelativePath, as <input webkitdirectory> gives them) become a
// pack through the streaming builder and a CachePackSink, then load and open. A cancelled
// build leaves nothing in the cache. The browser runs the same code on OPFS
// (e2e/build-pack.e2e.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { basename, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_SD } from '../../test/tiny-pack.ts';
import { Engine } from '../engine/engine.ts';
import { MemoryPackCache } from '../packs/pack-cache.ts';
import type { DownloadProgress, WorkerError } from '../domain/types.ts';
import { buildPack } from '../packs/build-pack.ts';
import { BUNDLED_MERGES } from '../packs/pack-build-node.ts';
import { sha256Hex } from '../packs/sha256.ts';
import { buildAndLoad, modelName, modelSourceFor } from './pack-build.ts';
import { createWorkerApi } from './worker-api.ts';

const TINY_LDM = join(TINY_SD, '../single-file/tiny-sd.ldm.safetensors');

/** A folder as the browser's folder picker hands it over. */
function picked(dir: string): File[] {
  const top = basename(dir);
  const out: File[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const f = new File([readFileSync(full)], name);
        Object.defineProperty(f, 'webkitRelativePath', {
          value: `${top}/${relative(dir, full).split('\\').join('/')}`,
        });
        out.push(f);
      }
    }
  };
  walk(dir);
  return out;
}

const engines: Engine[] = [];
const cache = new MemoryPackCache();
const api = createWorkerApi({
  createEngine: async () => {
    const e = await Engine.create();
    engines.push(e);
    return e;
  },
  openCache: async () => ({ cache, kind: 'memory', note: 'memory in tests' }),
});
afterAll(() => {
  api.host.dropEngine();
  for (const e of engines) if (!e.isLost) e.destroy();
});

describe('building a pack from a picked model in the worker', () => {
  it('names the pack after what was picked, and refuses pickles and non-models with the reason', () => {
    expect(modelName({ kind: 'diffusers', files: picked(TINY_SD) })).toBe('tiny-sd');
    expect(modelName({ kind: 'single-file', file: new File([], 'dreamshaper_8.safetensors') })).toBe('dreamshaper_8');
    expect(() => modelSourceFor({ kind: 'single-file', file: new File([], 'model.ckpt') })).toThrow(/pickle.*run code/);
    expect(() => modelSourceFor({ kind: 'single-file', file: new File([], 'photo.png') })).toThrow(
      /not a \.safetensors/,
    );
    expect(() => modelSourceFor({ kind: 'diffusers', files: picked(join(TINY_SD, 'tokenizer')) })).toThrow(
      /no unet\/config\.json/,
    );
  });

  it('a diffusers folder: build progress with bytes, rate and ETA, then the pack loads (no tuning encoder)', async () => {
    const events: DownloadProgress[] = [];
    const summary = await api.loadPack(
      'b-1',
      { kind: 'build', model: { kind: 'diffusers', files: picked(TINY_SD) } },
      (p) => events.push(p),
    );
    expect(summary).toMatchObject({
      id: 'tiny-sd',
      imageSize: 16,
      tokenDim: 32,
      hasTuningEncoder: false,
      tuningSteps: 60,
    });
    expect(summary.hash).toBe((await api.host.runtime()).hash);
    const build = events.filter((e) => e.phase === 'build');
    expect(build.length).toBeGreaterThan(0);
    expect(build.at(-1)).toMatchObject({ loadedBytes: build.at(-1)!.totalBytes });
    expect(build.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null)).toBe(true);
    // Then the loader finds every file already in the cache.
    expect(events.at(-1)?.phase).toBe('done');
    expect(events.some((e) => e.phase === 'download')).toBe(false);
    expect((await cache.keys()).filter((k) => k.startsWith('build-'))).toEqual([]);
  });

  it('a single-file checkpoint with a config folder gives the same weights files as the folder', async () => {
    const before = new Set(await cache.keys());
    const summary = await api.loadPack(
      'b-2',
      {
        kind: 'build',
        model: {
          kind: 'single-file',
          file: new File([readFileSync(TINY_LDM)], 'tiny-sd.ldm.safetensors'),
          configFiles: picked(TINY_SD),
        },
      },
      () => {},
    );
    expect(summary).toMatchObject({ id: 'tiny-sd.ldm', hasTuningEncoder: false });
    const rt = await api.host.runtime();
    const added = (await cache.keys()).filter((k) => !before.has(k));
    // Content-addressed: every weights file is byte-identical to the folder build's, so only
    // the new manifest (and graphs, whose names embed nothing of the source) can be new.
    for (const f of rt.manifest.files.filter((f) => f.role === 'weights'))
      expect(before.has(f.sha256), f.path).toBe(true);
    expect(added.filter((k) => /^[0-9a-f]{64}$/.test(k)).length).toBeLessThanOrEqual(
      rt.manifest.files.filter((f) => f.role !== 'weights').length,
    );
  });

  it('the bundled CLIP merges are fetched only for a model without a tokenizer', async () => {
    let fetched = 0;
    const bundledMerges = async () => {
      fetched++;
      return new Blob([readFileSync(BUNDLED_MERGES)]);
    };
    const build = (configFiles: File[]) =>
      buildAndLoad(
        {
          kind: 'single-file',
          file: new File([readFileSync(TINY_LDM)], 'tiny-sd.ldm.safetensors'),
          configFiles,
        },
        {
          cache: new MemoryPackCache(),
          builder: buildPack,
          signal: new AbortController().signal,
          onProgress: () => {},
          bundledMerges,
        },
      );
    const withTokenizer = await build(picked(TINY_SD));
    expect(fetched).toBe(0);
    expect(withTokenizer.manifest.files.find((f) => f.role === 'tokenizer')?.sha256).toBe(
      sha256Hex(new Uint8Array(readFileSync(join(TINY_SD, 'tokenizer/merges.txt')))),
    );
    // A folder of configs only (no tokenizer/): the worker hands over the bundled merges.
    const configsOnly = picked(TINY_SD).filter(
      (f) => !/\/tokenizer\//.test((f as File & { webkitRelativePath: string }).webkitRelativePath),
    );
    const bundled = await build(configsOnly);
    expect(fetched).toBe(1);
    expect(bundled.manifest.files.find((f) => f.role === 'tokenizer')?.sha256).toBe(
      sha256Hex(new Uint8Array(gunzipSync(readFileSync(BUNDLED_MERGES)))),
    );
  });

  it('a model without an image encoder fails as a pack problem that says what to pick', async () => {
    const files = picked(TINY_SD).filter(
      (f) => !/\/image_encoder\//.test((f as File & { webkitRelativePath: string }).webkitRelativePath),
    );
    const e = await api
      .loadPack('b-4', { kind: 'build', model: { kind: 'diffusers', files } }, () => {})
      .then(
        () => null,
        (err: WorkerError) => err,
      );
    expect(e?.kind).toBe('pack');
    expect(e?.message).toMatch(/no image encoder.*choose an image-encoder folder/);
    // With the image encoder picked separately, the same folder builds.
    const imageEncoderFiles = picked(join(TINY_SD, 'image_encoder'));
    const summary = await api.loadPack(
      'b-5',
      { kind: 'build', model: { kind: 'diffusers', files, imageEncoderFiles } },
      () => {},
    );
    expect(summary.id).toBe('tiny-sd');
    const notAModel = await api
      .loadPack(
        'b-6',
        { kind: 'build', model: { kind: 'diffusers', files: picked(join(TINY_SD, 'tokenizer')) } },
        () => {},
      )
      .then(
        () => null,
        (err: WorkerError) => err,
      );
    expect(notAModel).toMatchObject({ kind: 'pack', message: expect.stringMatching(/not a diffusers model/) });
  });

  it('cancelling a build rejects as cancelled and removes what it wrote', async () => {
    const fresh = new MemoryPackCache();
    const local = createWorkerApi({
      createEngine: () => Promise.reject(new Error('not needed')),
      openCache: async () => ({ cache: fresh, kind: 'memory', note: null }),
    });
    let cancelled = false;
    const run = local.loadPack('b-3', { kind: 'build', model: { kind: 'diffusers', files: picked(TINY_SD) } }, (p) => {
      if (p.phase === 'build' && !cancelled) {
        cancelled = true;
        local.cancel('b-3');
      }
    });
    const e = await run.then(
      () => null,
      (err: WorkerError) => err,
    );
    expect(cancelled).toBe(true);
    expect(e?.kind).toBe('cancelled');
    // The sink's discard runs before the job settles.
    expect(await fresh.keys()).toEqual([]);
    expect(await fresh.partialSize('build-b-3-0')).toBe(0);
  });
});
