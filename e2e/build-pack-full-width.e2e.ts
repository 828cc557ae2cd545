// A Stable Diffusion 1.5-width single-file checkpoint built into a pack in the browser: a
// synthetic random-weight LDM-layout .safetensors (src/packs/synthetic-ldm.ts: the real
// SD 1.5 channel widths and 49408×768 token table, one layer per block, 64 px images) is
// picked in the Model step with a folder of its configs and image encoder but no
// tokenizer/. The worker builds the pack from the file piece by piece, with progress, into
// OPFS — taking the CLIP merges from the app's bundled asset — and loads it (weights
// checked against the configs and uploaded to the GPU). The fixture (1.4 GB) is written to
// a temporary folder and removed afterwards.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll } from 'vitest';
import { writeSyntheticLdm } from '../src/packs/synthetic-ldm.ts';
import { expect, test } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'likeness-build-full-width-'));
const CHECKPOINT = join(dir, 'sd15-full-width.safetensors');
const CONFIGS = join(dir, 'sd15-configs');
/** sha256 of the bundled merges as the pack must hold them (decompressed). */
const BUNDLED_MERGES_SHA = createHash('sha256')
  .update(gunzipSync(readFileSync(new URL('../src/packs/clip-bpe/bpe_simple_vocab_16e6.txt.gz', import.meta.url))))
  .digest('hex');

beforeAll(() => {
  writeSyntheticLdm({
    out: CHECKPOINT,
    configOut: CONFIGS,
    variant: 'sd15',
    dtype: 'fp16',
    imageSize: 64,
    unetLayersPerBlock: 1,
    vaeLayersPerBlock: 1,
    textLayers: 1,
    visionLayers: 1,
    visionImageSize: 56,
  });
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  stages: string[];
  /** Seconds since the click at which each stage began. */
  at: number[];
  build: { loadedBytes: number; totalBytes: number }[];
  shown: string[];
}

test(
  'an SD 1.5-width single .safetensors without a tokenizer is built in the worker into OPFS and loads',
  { timeout: 1_200_000 },
  async ({ app }) => {
    const { page } = app;
    const requests: string[] = [];
    page.context().on('request', (r) => requests.push(r.url()));
    await app.resetStorage();
    await app.open();
    await app.goToStep('pack');
    await page.getByLabel('From a .safetensors checkpoint on this device').check();
    await page.locator('#pack-checkpoint-input').setInputFiles(CHECKPOINT);
    await page.locator('#pack-checkpoint-config-input').setInputFiles(CONFIGS);
    await expect
      .poll(() => page.getByTestId('pack-checkpoint-file').textContent())
      .toMatch(/sd15-full-width\.safetensors: 1\.[34] GB/);

    // Record what the progress panel shows until the job ends.
    await page.evaluate(() => {
      const w = window as unknown as { __seen: Seen; __stop: () => void };
      w.__seen = { stages: [], at: [], build: [], shown: [] };
      const start = performance.now();
      const timer = setInterval(() => {
        const p = window.__likeness!.state().pack.progress;
        const el = document.querySelector('[data-testid="download-progress"]');
        if (el?.textContent && w.__seen.shown.at(-1) !== el.textContent) w.__seen.shown.push(el.textContent);
        if (!p) return;
        if (p.phase === 'build' && w.__seen.build.at(-1)?.loadedBytes !== p.loadedBytes)
          w.__seen.build.push({ loadedBytes: p.loadedBytes, totalBytes: p.totalBytes });
        const stage = `${p.phase}:${p.file}`;
        if (w.__seen.stages.at(-1) !== stage) {
          w.__seen.stages.push(stage);
          w.__seen.at.push(Math.round((performance.now() - start) / 1000));
        }
      }, 50);
      w.__stop = () => clearInterval(timer);
    });
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Build and load' }).click();
    await page.waitForFunction(
      () => ['done', 'failed', 'cancelled'].includes(window.__likeness!.state().pack.status),
      null,
      { timeout: 1_100_000, polling: 1000 },
    );
    const seconds = (performance.now() - t0) / 1000;
    const seen = await page.evaluate(() => {
      const w = window as unknown as { __seen: Seen; __stop: () => void };
      w.__stop();
      return w.__seen;
    });
    expect(await app.notices()).toEqual([]);
    expect(await app.state((s) => s.pack.status)).toBe('done');

    // Progress: the build's bytes only grow and reach the total (the file's tensors: 1.37 GB).
    const done = seen.build.map((p) => p.loadedBytes);
    expect(done.length).toBeGreaterThan(1);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(seen.build.at(-1)).toEqual({ loadedBytes: seen.build.at(-1)!.totalBytes, totalBytes: expect.any(Number) });
    expect(seen.build.at(-1)!.totalBytes).toBeGreaterThan(1.3e9);
    expect(seen.stages.some((s) => /^build:.*unet\/diffusion_pytorch_model\.safetensors/.test(s))).toBe(true);
    expect(seen.shown.some((t) => /Building the pack: .*[\d.]+ [KMG]?B of 1\.[34] GB/.test(t))).toBe(true);

    const summary = (await app.state((s) => s.pack.summary))!;
    expect(summary).toMatchObject({
      id: 'sd15-full-width',
      imageSize: 64,
      tokenDim: 768,
      vocabSize: 49408,
      storage: 'opfs',
      hasTuningEncoder: false,
    });

    // The tokenizer is the app's bundled CLIP merges, fetched by the worker: the pack's
    // tokenizer file in OPFS is that file, decompressed. Nothing partial is left.
    const entries = await page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const packs = await root.getDirectoryHandle('likeness-packs');
      const out: string[] = [];
      for await (const name of (packs as unknown as { keys(): AsyncIterable<string> }).keys()) out.push(name);
      return out;
    });
    expect(entries).toContain(BUNDLED_MERGES_SHA);
    expect(entries.filter((n) => /\.(partial|tmp)$/.test(n))).toEqual([]);
    expect(requests.filter((u) => /bpe_simple_vocab_16e6[^/]*\.gz/.test(u)).length).toBeGreaterThan(0);

    console.info(
      `full-width single-file build in the browser: ${(seen.build.at(-1)!.totalBytes / 1e9).toFixed(2)} GB of tensors, build and load ${seconds.toFixed(0)} s; stages ${seen.stages.map((st, i) => `${st} @${seen.at[i]} s`).join(' → ')}`,
    );
    await app.screenshot('build-pack-full-width');
    expect(app.errors).toEqual([]);
  },
);
