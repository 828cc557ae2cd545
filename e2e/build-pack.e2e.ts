// The Model step builds packs from models picked on this device, inside the worker: a
// diffusers folder (the tiny-sd reference model, full SD architecture at toy width and
// spatial size) and the same model as one original-layout .safetensors checkpoint with that
// folder for its configs. Each build shows its progress (stage, bytes, rate, time left),
// streams the pack into OPFS (no partial file left behind) and loads it; cancelling a build
// leaves nothing in OPFS.
import { expect, test, type AppPage } from './fixtures.ts';

const TINY_SD = new URL('../../shared/data/reference/tiny-sd', import.meta.url).pathname;
const TINY_LDM = new URL('../../shared/data/reference/single-file/tiny-sd.ldm.safetensors', import.meta.url).pathname;

interface Record {
  shown: string[];
  phases: string[];
  progress: {
    phase?: string;
    file: string;
    loadedBytes: number;
    totalBytes: number;
    bytesPerSecond: number;
    etaSeconds: number | null;
  }[];
}

/** Names in the pack cache folder of OPFS. */
async function opfsEntries(app: AppPage): Promise<string[]> {
  return app.page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    let dir: FileSystemDirectoryHandle;
    try {
      dir = await root.getDirectoryHandle('likeness-packs');
    } catch {
      return [];
    }
    const out: string[] = [];
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) out.push(name);
    return out.sort();
  });
}

/** Clicks Load and records what the progress panel showed until the job ends. */
async function loadAndRecord(app: AppPage, onBuild?: () => Promise<void>): Promise<Record> {
  const { page } = app;
  await page.evaluate(() => {
    const w = window as unknown as { __rec: Record; __stop: () => void };
    w.__rec = { shown: [], phases: [], progress: [] };
    const look = () => {
      const el = document.querySelector('[data-testid="download-progress"]');
      if (el?.textContent) w.__rec.shown.push(el.textContent);
      const p = window.__likeness!.state().pack.progress;
      if (p && p !== w.__rec.progress.at(-1)) {
        w.__rec.progress.push(p);
        if (p.phase && w.__rec.phases.at(-1) !== p.phase) w.__rec.phases.push(p.phase);
      }
    };
    const observer = new MutationObserver(look);
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    const timer = setInterval(look, 5);
    w.__stop = () => {
      observer.disconnect();
      clearInterval(timer);
    };
  });
  await page.getByRole('button', { name: /^(Load (model|again)|Build and load)$/ }).click();
  if (onBuild) await onBuild();
  await page.waitForFunction(() => ['done', 'failed', 'cancelled'].includes(window.__likeness!.state().pack.status));
  return page.evaluate(() => {
    const w = window as unknown as { __rec: Record; __stop: () => void };
    w.__stop();
    return w.__rec;
  });
}

function expectBuildProgress(rec: Record): void {
  const build = rec.progress.filter((p) => p.phase === 'build');
  expect(build.length).toBeGreaterThan(0);
  const done = build.map((p) => p.loadedBytes);
  expect(done).toEqual([...done].sort((a, b) => a - b)); // never goes backwards
  expect(build.at(-1)!.loadedBytes).toBe(build.at(-1)!.totalBytes);
  expect(build.some((p) => /safetensors/.test(p.file))).toBe(true);
  // The panel words the stage, the bytes of the total, the rate and the time left.
  expect(rec.shown.some((t) => /Building the pack: .*[\d.]+ [KM]?B of [\d.]+ [KM]B/.test(t))).toBe(true);
  expect(rec.shown.some((t) => /Cancel build/.test(t))).toBe(true);
}

test('a picked diffusers folder is built into OPFS inside the worker and loads', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  await app.goToStep('pack');
  await page.getByLabel('From a folder on this device').check();
  await page.locator('#pack-folder-input').setInputFiles(TINY_SD);
  await expect.poll(() => page.getByTestId('pack-folder').textContent()).toMatch(/a diffusers model/);

  const rec = await loadAndRecord(app);
  expect(await app.state((s) => [s.pack.status, s.notices.filter((n) => n.tone === 'error')])).toEqual(['done', []]);
  expect(rec.phases[0]).toBe('build');
  expectBuildProgress(rec);
  const summary = (await app.state((s) => s.pack.summary))!;
  expect(summary).toMatchObject({
    id: 'tiny-sd',
    imageSize: 16,
    tokenDim: 32,
    storage: 'opfs',
    hasTuningEncoder: false,
  });
  // Built without an encoder: the app says personalization starts from a class word.
  await expect.poll(() => page.getByTestId('pack-encoder').textContent()).toMatch(/word you type/);
  const entries = await opfsEntries(app);
  expect(entries.filter((n) => /\.(partial|tmp)$/.test(n))).toEqual([]);
  expect(entries.filter((n) => /^[0-9a-f]{64}$/.test(n)).length).toBeGreaterThanOrEqual(5);
  await app.screenshot('build-pack-folder');

  // Personalizing it starts from a class word: asked for with its reason, required, and the
  // start is shown when tuning begins and kept with the concept.
  await app.choosePhoto('chelsea.png');
  await app.goToStep('personalize');
  const form = page.getByTestId('screen-personalize');
  await expect(
    form
      .getByText(/no tuning encoder/)
      .first()
      .textContent(),
  ).resolves.toMatch(/ordinary word/);
  expect(await form.getByLabel('Tuning steps').inputValue()).toBe('60');
  await expect(page.getByTestId('personalize-blocker').textContent()).resolves.toMatch(/one word what the photo shows/);
  expect(await form.getByRole('button', { name: 'Personalize', exact: true }).isDisabled()).toBe(true);
  await form.getByLabel('What is it? (one word)').fill('cat');
  await form.getByLabel('Tuning steps').fill('1');
  await form.getByRole('button', { name: 'Personalize', exact: true }).click();
  await page.getByText('Saved to your library.').waitFor({ timeout: 120_000 });
  await expect(page.getByTestId('personalize-start').textContent()).resolves.toMatch(/Started from the word “cat”/);
  expect(await app.state((s) => s.library.concepts[0].start)).toEqual({ kind: 'class-word', word: 'cat' });
  await app.screenshot('build-pack-class-word');
});

test('a single .safetensors checkpoint (LDM layout) with a config folder is built and loads', async ({ app }) => {
  const { page } = app;
  await app.open();
  const before = await opfsEntries(app);
  await app.goToStep('pack');
  await page.getByLabel('From a .safetensors checkpoint on this device').check();
  await page.locator('#pack-checkpoint-input').setInputFiles(TINY_LDM);
  await page.locator('#pack-checkpoint-config-input').setInputFiles(TINY_SD);
  await expect.poll(() => page.getByTestId('pack-checkpoint-file').textContent()).toMatch(/tiny-sd\.ldm\.safetensors/);

  const rec = await loadAndRecord(app);
  expect(await app.state((s) => [s.pack.status, s.notices.filter((n) => n.tone === 'error')])).toEqual(['done', []]);
  expectBuildProgress(rec);
  const summary = (await app.state((s) => s.pack.summary))!;
  expect(summary).toMatchObject({ id: 'tiny-sd.ldm', imageSize: 16, tokenDim: 32, storage: 'opfs' });
  // The Model step says what the pack was built from (and any warnings of the build).
  await expect
    .poll(() => page.getByTestId('pack-description').textContent())
    .toMatch(/^Built by likeness pack from a single file tiny-sd\.ldm\.safetensors\b.*; scheduler \w+Scheduler/);
  // The conversion gives exactly tiny-sd's tensors, so every file is the folder build's entry
  // again (content-addressed).
  const after = await opfsEntries(app);
  expect(after.filter((n) => /\.(partial|tmp)$/.test(n))).toEqual([]);
  const added = after.filter((n) => !before.includes(n));
  console.info(`single-file build added ${added.length} OPFS entries to ${before.length}`);
  // Only the loader's manifest entry is new: weights, tokenizer and graphs are the same bytes.
  expect(added.filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
});

test('cancelling a build stops it and leaves nothing of it in OPFS', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  const before = await opfsEntries(app);
  await app.goToStep('pack');
  await page.getByLabel('From a folder on this device').check();
  await page.locator('#pack-folder-input').setInputFiles(TINY_SD);
  const rec = await loadAndRecord(app, async () => {
    await page.waitForFunction(() => window.__likeness!.state().pack.progress?.phase === 'build');
    await page.getByRole('button', { name: 'Cancel build' }).click();
  });
  expect(rec.phases).toContain('build');
  expect(await app.state((s) => s.pack.status)).toBe('cancelled');
  await expect.poll(() => page.getByTestId('download-cancelled').textContent()).toMatch(/Build cancelled/);
  // The worker removes what the build wrote once the abort reaches it.
  await expect.poll(() => opfsEntries(app), { timeout: 20_000 }).toEqual(before);
});
