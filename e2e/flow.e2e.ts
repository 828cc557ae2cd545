// The whole product on the bundled tiny pack, driven through the UI as a person would:
// load the model (progress on screen) → photo → crop → personalize (nearest words, per-step
// progress) → generate → reload → the concept is still there → export → delete → import →
// the same seed gives the same image. Then: the browser and the Node CLI pipeline make the
// same image; the app works offline after one visit; a pack whose manifest lists a wrong
// sha256 is refused with that reason and the library is left alone.
//
// One browser profile for the whole file (fixtures.ts), so OPFS, IndexedDB and the service
// worker carry over from test to test as they would for one person. Software WebGPU is slow:
// 3 tuning steps, 3 sampling steps.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../src/engine/engine.ts';
import { loadPackFromFolder } from '../src/packs/pack-node.ts';
import { generate } from '../src/pipeline/generate.ts';
import { decodeImage } from '../src/image/decode-node.ts';
import type { RgbaImage } from '../src/image/types.ts';
import { PackRuntime } from '../src/pipeline/pack-runtime.ts';
import type { DownloadProgress, SamplerName } from '../src/domain/types.ts';
import { afterAll } from 'vitest';
import { importConcept } from '../src/storage/concept-safetensors.ts';
import { ARTIFACTS, expect, test, type AppPage } from './fixtures.ts';

/** The build's copy of the bundled pack: the very files the browser downloads. */
const BUILT_PACK = 'dist/models/tiny';
const SEED = 1234;
const SETTINGS = { steps: 3, sampler: 'ddim' as SamplerName, guidance: 7.5 };

interface PackLoadRecord {
  /** Texts the download panel showed while it was on screen. */
  shown: string[];
  progress: DownloadProgress[];
}

/** Loads the bundled pack from the Model step, recording what the download panel showed. */
async function loadBundledPack(app: AppPage): Promise<PackLoadRecord> {
  const { page } = app;
  await app.goToStep('pack');
  await page.getByLabel(/Tiny pack, bundled/).check();
  await page.evaluate(() => {
    const w = window as unknown as { __packLoad: PackLoadRecord; __stopRecord: () => void };
    w.__packLoad = { shown: [], progress: [] };
    const look = () => {
      const el = document.querySelector('[data-testid="download-progress"]');
      if (el?.textContent) w.__packLoad.shown.push(el.textContent);
      const p = window.__likeness!.state().pack.progress;
      if (p && p !== w.__packLoad.progress.at(-1)) w.__packLoad.progress.push(p);
    };
    const observer = new MutationObserver(look);
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    const timer = setInterval(look, 5);
    w.__stopRecord = () => {
      observer.disconnect();
      clearInterval(timer);
    };
  });
  await page.getByRole('button', { name: /^Load (model|again)$/ }).click();
  await page.waitForFunction(() => ['done', 'failed'].includes(window.__likeness!.state().pack.status));
  const record = await page.evaluate(() => {
    const w = window as unknown as { __packLoad: PackLoadRecord; __stopRecord: () => void };
    w.__stopRecord();
    return w.__packLoad;
  });
  expect(await app.state((s) => [s.pack.status, s.notices.filter((n) => n.tone === 'error')])).toEqual(['done', []]);
  await page.getByTestId('pack-summary').waitFor();
  return record;
}

/** Fills the generate form, generates one image, downloads its PNG and decodes it in Node. */
async function generateAndDownload(
  app: AppPage,
  o: { prompt: string; seed: number; steps: number; sampler: SamplerName; guidance: number; file: string },
): Promise<{ image: RgbaImage; png: Buffer }> {
  const { page } = app;
  await app.goToStep('generate');
  const screen = page.getByTestId('screen-generate');
  await screen.getByLabel('Prompt', { exact: true }).fill(o.prompt);
  await screen.getByRole('spinbutton', { name: 'Steps', exact: true }).fill(String(o.steps));
  await screen.getByLabel('Guidance', { exact: true }).fill(String(o.guidance));
  await screen.getByLabel('Seed', { exact: true }).fill(String(o.seed));
  await screen.getByLabel('Sampler', { exact: true }).selectOption(o.sampler);
  await screen.getByLabel('Runtime', { exact: true }).selectOption('engine');
  const before = await app.state((s) => s.gallery.length);
  await screen.getByRole('button', { name: 'Generate', exact: true }).click();
  await page.waitForFunction(
    (n) => window.__likeness!.state().gallery.length > n || window.__likeness!.state().generate.status === 'failed',
    before,
  );
  expect(await app.state((s) => s.notices.filter((n) => n.tone === 'error'))).toEqual([]);
  const item = page.getByTestId('gallery-item').first();
  await expect
    .poll(() => item.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth))
    .toBeGreaterThan(0);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: `Download PNG (seed ${o.seed})` }).click(),
  ]);
  const path = join(ARTIFACTS, o.file);
  await download.saveAs(path);
  const png = readFileSync(path);
  return { image: await decodeImage(new Uint8Array(png)), png };
}

let nodeRuntime: Promise<PackRuntime> | null = null;
/** The Node side of the comparisons: the engine on Node's WebGPU (Dawn), the same pack files. */
function nodePack(): Promise<PackRuntime> {
  nodeRuntime ??= (async () => PackRuntime.open(await Engine.create(), await loadPackFromFolder(BUILT_PACK)))();
  return nodeRuntime;
}
afterAll(async () => {
  if (!nodeRuntime) return;
  const rt = await nodeRuntime;
  rt.dispose();
  rt.engine.destroy();
});

function maxAbsDiff(a: Uint8ClampedArray | Uint8Array, b: Uint8ClampedArray | Uint8Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('photo → personalize → generate → reload → export → delete → import → the same image again', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();

  // 1. The model: a real download, with the file, bytes and total on screen.
  const load = await loadBundledPack(app);
  const summary = (await app.state((s) => s.pack.summary))!;
  expect(load.shown.some((t) => /Downloading unet\/diffusion_pytorch_model\.safetensors/.test(t))).toBe(true);
  // Bytes so far of the total, the rate and the time left, as the panel words them.
  expect(load.shown.some((t) => /[\d.]+ [KM]B of 11 MB[\d.]+ [KM]B\/s\d+ s left/.test(t))).toBe(true);
  const loaded = load.progress.map((p) => p.loadedBytes);
  expect(loaded).toEqual([...loaded].sort((a, b) => a - b)); // never goes backwards
  expect(load.progress.at(-1)).toMatchObject({ loadedBytes: summary.totalBytes, totalBytes: summary.totalBytes });
  expect(summary).toMatchObject({ id: 'tiny', imageSize: 16, tokenDim: 32, rank: 4, storage: 'opfs', offline: false });
  expect(summary.loraTargets).toHaveLength(32);
  await app.screenshot('flow-pack');

  // 2. The photo, and a crop moved off-centre with the keyboard.
  await app.choosePhoto('chelsea.png');
  const defaultCrop = await app.state((s) => s.photo.crop);
  expect(defaultCrop).toEqual({ x: 75, y: 0, size: 300 });
  await page.getByTestId('crop-box').focus();
  for (const key of ['-', '-', 'ArrowRight', 'ArrowRight', 'ArrowDown']) await page.keyboard.press(key);
  const crop = (await app.state((s) => s.photo.crop))!;
  expect(crop.size).toBeLessThan(300);
  expect(crop.x).toBeGreaterThan(defaultCrop!.x);
  await app.screenshot('flow-photo-crop');

  // 3. Personalize: 3 tuning steps; the nearest words and each step appear as they happen.
  await app.goToStep('personalize');
  const form = page.getByTestId('screen-personalize');
  await form.getByLabel('Tuning steps').fill('3');
  await form.getByLabel('Tuning seed').fill('7');
  await form.getByRole('button', { name: 'Personalize', exact: true }).click();
  const stepLabel = page.getByTestId('personalize-progress').locator('label');
  const seenSteps = new Set<string>();
  await expect
    .poll(
      async () => {
        const m = /step (\d) of 3/.exec((await stepLabel.textContent().catch(() => '')) ?? '');
        if (m) seenSteps.add(m[1]);
        return seenSteps.size > 0 && (await app.state((s) => s.personalize.nearest.length)) > 0;
      },
      { timeout: 120_000, interval: 50 },
    )
    .toBe(true);
  await expect(page.getByTestId('nearest-words').textContent()).resolves.toMatch(/^near: \S+(, \S+){4}$/);
  // The bundled pack's encoder is the untrained initialisation, and the app says so.
  await expect(page.getByTestId('personalize-start').textContent()).resolves.toMatch(/untrained test encoder/);
  await page.getByText('Saved to your library.').waitFor({ timeout: 120_000 });
  const p = await app.state((s) => s.personalize);
  expect(p.status).toBe('done');
  expect(p.losses).toHaveLength(3);
  expect(p.losses.every(Number.isFinite)).toBe(true);
  expect(seenSteps.size).toBeGreaterThanOrEqual(1);
  await page.getByTestId('loss-chart').waitFor();
  await app.screenshot('flow-personalize');
  const conceptName = await app.state<string>((s) => s.library.concepts[0].name);
  expect(await app.state((s) => s.library.concepts.map((c) => c.nearestWords))).toEqual([p.nearest]);

  // 4. Generate with the concept, fixed seed.
  expect(await app.state((s) => s.generate.conceptId)).toBe(p.savedId);
  const prompt = `a watercolor painting of ${p.placeholder} in Paris`;
  const first = await generateAndDownload(app, { prompt, seed: SEED, ...SETTINGS, file: 'flow-first.png' });
  expect([first.image.width, first.image.height]).toEqual([16, 16]);
  await app.screenshot('flow-generate');

  // 5. A reload keeps the concept.
  await app.reload();
  await app.goToStep('library');
  expect(await app.libraryNames()).toEqual([conceptName]);
  const card = page.getByTestId('concept-card').first();
  await expect
    .poll(() => card.locator('img.thumb').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth))
    .toBeGreaterThan(0);
  await app.screenshot('flow-library');

  // 6. Export, 7. delete, 8. import the exported file.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.getByRole('button', { name: `Export ${conceptName}`, exact: true }).click(),
  ]);
  const conceptPath = join(ARTIFACTS, 'flow-concept.safetensors');
  await download.saveAs(conceptPath);
  expect(readFileSync(conceptPath).length).toBeGreaterThan(1000);
  // The exported file, read strictly against the pack in Node, makes the browser's image there too.
  const rt = await nodePack();
  const concept = importConcept(new Uint8Array(readFileSync(conceptPath)), {
    hash: summary.hash,
    id: summary.id,
    tokenDim: summary.tokenDim,
    rank: summary.rank,
    targets: summary.loraTargets,
  });
  const [inNode] = await generate(rt, {
    prompt,
    negativePrompt: '',
    seed: SEED,
    ...SETTINGS,
    blend: 0.25,
    batch: 1,
    concept,
    runtime: 'engine',
  });
  const nodeDiff = maxAbsDiff(first.image.data, inNode.rgba);
  console.info(`with the concept, browser vs Node: max pixel difference ${nodeDiff}/255`);
  expect(nodeDiff).toBeLessThanOrEqual(2);
  await card.getByRole('button', { name: `Delete ${conceptName}` }).click();
  await card.getByRole('button', { name: 'Delete for good' }).click();
  await page.getByTestId('library-empty').waitFor();
  // The import checks the file against the loaded pack, so load it first (from OPFS now).
  await loadBundledPack(app);
  await app.goToStep('library');
  await page.locator('#concept-import-input').setInputFiles(conceptPath);
  // The import reads the file and asks the worker to check it against the pack: seconds
  // on a loaded 2-core machine, not the default one-second poll.
  await expect.poll(() => app.libraryNames(), { timeout: 30_000 }).toEqual([conceptName]);
  expect(await app.notices()).toEqual([]);

  // 9. The imported concept, the same seed and settings: the same pixels.
  await page.getByRole('button', { name: `Use ${conceptName}` }).click();
  await page.getByTestId('screen-generate').waitFor();
  const again = await generateAndDownload(app, { prompt, seed: SEED, ...SETTINGS, file: 'flow-again.png' });
  const diff = maxAbsDiff(first.image.data, again.image.data);
  console.info(`same seed after export → delete → import: max pixel difference ${diff}/255`);
  expect(diff).toBe(0);
  expect(app.errors).toEqual([]);
});

test('the browser worker and the Node pipeline make the same image', async ({ app }) => {
  await app.open();
  await loadBundledPack(app);
  const summary = (await app.state((s) => s.pack.summary))!;
  const prompt = 'a photo of a cat on the beach';
  const browser = await generateAndDownload(app, {
    prompt,
    seed: SEED,
    ...SETTINGS,
    file: 'browser-vs-node-browser.png',
  });

  // Node: the same pack files, the same request, the engine on Node's WebGPU (Dawn).
  const rt = await nodePack();
  expect(rt.hash).toBe(summary.hash);
  const [node] = await generate(rt, {
    prompt,
    negativePrompt: '',
    seed: SEED,
    ...SETTINGS,
    blend: 0.25,
    batch: 1,
    concept: null,
    runtime: 'engine',
  });
  const diff = maxAbsDiff(browser.image.data, node.rgba);
  let differing = 0;
  for (let i = 0; i < node.rgba.length; i++) if (node.rgba[i] !== browser.image.data[i]) differing++;
  const adapter = await app.state((s) => (s.gpu.status === 'done' && s.gpu.report.ok ? s.gpu.report.info.name : '?'));
  console.info(
    `browser (${adapter}) vs Node (${rt.engine.info.name}): ` +
      `max pixel difference ${diff}/255, ${differing} of ${node.rgba.length} channel values differ`,
  );
  // SwiftShader (Chromium) and lavapipe or SwiftShader (Dawn in Node) may round float32
  // differently; through 3 DDIM steps that must stay within 2/255 per channel.
  expect(diff).toBeLessThanOrEqual(2);
});

test('after one visit the app loads and generates offline', async ({ app, browser }) => {
  const { page } = app;
  await app.open();
  // The service worker has cached the shell, the engine worker and onnxruntime-web.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => !!navigator.serviceWorker.controller);
  const cached = await page.evaluate(async () => {
    const name = (await caches.keys()).find((k) => k.startsWith('likeness-shell-'));
    if (!name) return [];
    return (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
  });
  expect(cached).toContain('/index.html');
  for (const re of [
    /^\/assets\/index-.*\.js$/,
    /^\/assets\/engine-worker-.*\.js$/,
    /^\/assets\/ort\.webgpu.*\.js$/,
    /^\/assets\/ort-wasm.*\.wasm$/,
  ]) {
    expect(
      cached.some((p) => re.test(p)),
      `${re} is cached`,
    ).toBe(true);
  }
  expect(cached.some((p) => p.startsWith('/models/'))).toBe(false);
  await loadBundledPack(app); // online: the pack is in OPFS

  await browser.context.setOffline(true);
  try {
    await app.reload();
    // Really offline: the network is unreachable for the page and for the service worker.
    const probe = () =>
      page.evaluate(
        async (url) =>
          fetch(url, { cache: 'no-store' }).then(
            () => 'reached',
            () => 'unreachable',
          ),
        '/favicon.svg?probe',
      );
    expect(await probe()).toBe('unreachable');
    await loadBundledPack(app);
    expect(await app.state((s) => [s.pack.summary?.offline, s.notices.map((n) => n.kind)])).toEqual([
      true,
      ['pack-offline'],
    ]);
    const { image } = await generateAndDownload(app, {
      prompt: 'a photo of a dog',
      seed: 5,
      ...SETTINGS,
      steps: 2,
      file: 'offline.png',
    });
    expect(image.width).toBe(16);
    await app.screenshot('flow-offline');
  } finally {
    await browser.context.setOffline(false);
  }
});

test('a pack whose manifest lists a wrong sha256 is refused, and the library is left alone', async ({
  app,
  browser,
}) => {
  const { page } = app;
  await app.open();
  await app.saveConcept({ name: 'Kept safe' });
  const before = await app.rawLibrary();
  await app.open();

  // A copy of the tiny pack at /packs/bad/ whose manifest gives the tokenizer a wrong hash.
  const manifest = JSON.parse(readFileSync(`${BUILT_PACK}/manifest.json`, 'utf8'));
  const merges = manifest.files.find((f: { path: string }) => f.path === 'tokenizer/merges.txt');
  const real: string = merges.sha256;
  const wrong = real.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  merges.sha256 = wrong;
  const served: string[] = [];
  await browser.context.route('**/packs/bad/**', async (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/packs\/bad\//, '');
    served.push(path);
    const body =
      path === 'manifest.json' ? Buffer.from(JSON.stringify(manifest)) : readFileSync(join(BUILT_PACK, path));
    await route.fulfill({ status: 200, body, headers: { 'content-type': 'application/octet-stream' } });
  });
  try {
    await page.getByLabel('From an address').check();
    await page.getByLabel('Manifest address').fill(new URL('packs/bad/manifest.json', app.baseUrl).href);
    await page.getByRole('button', { name: 'Load model' }).click();
    await page.waitForFunction(() => ['done', 'failed'].includes(window.__likeness!.state().pack.status));
    expect(await app.state((s) => s.pack.status)).toBe('failed');
    const notices = await app.notices();
    expect(notices).toHaveLength(1);
    expect(notices[0].kind).toBe('pack');
    expect(notices[0].message).toMatch(
      new RegExp(`^tokenizer/merges\\.txt: sha256 mismatch: expected ${wrong}, got ${real}\\.`),
    );
    await expect(page.getByTestId('notice').first().textContent()).resolves.toContain('sha256 mismatch');
    await app.screenshot('flow-bad-sha256');
    expect(served).toContain('manifest.json');
    expect(served).toContain('tokenizer/merges.txt');
  } finally {
    await browser.context.unroute('**/packs/bad/**');
  }
  const after = await app.rawLibrary();
  expect(after).toEqual(before);
});
