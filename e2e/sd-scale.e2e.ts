// Stable Diffusion 1.5 widths in the browser: a synthetic random-weight SD 1.5 pack (real
// widths and token table, one layer per block, 64 px images / 8×8 latents) served from a
// local address is loaded into OPFS, loaded again from OPFS after a reload without fetching
// any weights, and generates one image (the prompt encoded, one UNet call, the latent
// decoded by the VAE with its 512-wide one-head mid-block attention).
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { buildPackFromPaths } from '../src/packs/pack-build-node.ts';
import { writeSyntheticSd } from '../src/packs/synthetic-sd.ts';
import { expect, test } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'likeness-sd-scale-e2e-'));
const packDir = join(dir, 'pack');
let server: Server;
let manifestUrl = '';
/** Paths the browser fetched, in order. */
const fetched: string[] = [];

beforeAll(async () => {
  const folder = join(dir, 'sd15');
  writeSyntheticSd({
    out: folder,
    variant: 'sd15',
    dtype: 'fp16',
    imageSize: 64,
    unetLayersPerBlock: 1,
    textLayers: 1,
    visionLayers: 1,
    visionImageSize: 56,
  });
  await buildPackFromPaths({ from: folder, out: packDir, name: 'sd15-synthetic' });
  rmSync(folder, { recursive: true, force: true });
  // A plain static server on another origin (with CORS), streaming files from disk: the
  // pack is 1.5 GB and must not pass through the test process's memory.
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '');
    const file = join(packDir, path);
    res.setHeader('access-control-allow-origin', '*');
    if (path.startsWith('..') || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    fetched.push(path);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the pack server has no port');
  manifestUrl = `http://127.0.0.1:${address.port}/manifest.json`;
}, 600_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(dir, { recursive: true, force: true });
});

test(
  'an SD 1.5-width pack loads into OPFS, reloads from OPFS, and generates an image',
  { timeout: 1_800_000 },
  async ({ app }) => {
    const { page } = app;
    const load = async () => {
      await app.goToStep('pack');
      await page.getByLabel('From an address').check();
      await page.getByLabel('Manifest address').fill(manifestUrl);
      await page.getByRole('button', { name: /^Load (model|again)$/ }).click();
      await page.waitForFunction(() => ['done', 'failed'].includes(window.__likeness!.state().pack.status), null, {
        timeout: 900_000,
      });
      expect(await app.notices()).toEqual([]);
      return (await app.state((s) => s.pack.summary))!;
    };

    await app.resetStorage();
    await app.open();
    const t0 = performance.now();
    const first = await load();
    const firstMs = performance.now() - t0;
    expect(first).toMatchObject({ imageSize: 64, tokenDim: 768, storage: 'opfs' });
    expect(fetched).toContain('unet/diffusion_pytorch_model.safetensors');

    // After a reload the pack comes from OPFS: no weights file is fetched again.
    await app.reload();
    fetched.length = 0;
    const t1 = performance.now();
    const second = await load();
    const secondMs = performance.now() - t1;
    expect(second).toMatchObject({ imageSize: 64, tokenDim: 768, storage: 'opfs', hash: first.hash });
    expect(fetched.filter((p) => p.endsWith('.safetensors'))).toEqual([]);

    // One sampling step: the prompt through the 49408-token table and CLIP text encoder, one
    // UNet call, the VAE decode.
    await app.goToStep('generate');
    const screen = page.getByTestId('screen-generate');
    await screen.getByLabel('Prompt', { exact: true }).fill('a photo of a cat');
    await screen.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('1');
    await screen.getByLabel('Seed', { exact: true }).fill('7');
    await screen.getByLabel('Sampler', { exact: true }).selectOption('ddim');
    await screen.getByLabel('Runtime', { exact: true }).selectOption('engine');
    const t2 = performance.now();
    await screen.getByRole('button', { name: 'Generate', exact: true }).click();
    await page.waitForFunction(
      () => window.__likeness!.state().gallery.length > 0 || window.__likeness!.state().generate.status === 'failed',
      null,
      { timeout: 1_200_000, polling: 1000 },
    );
    const generateMs = performance.now() - t2;
    expect(await app.notices()).toEqual([]);
    const img = page.getByTestId('gallery-item').first().locator('img');
    await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBe(64);
    // The decoded pixels vary (a NaN latent would decode to one flat colour).
    const spread = await img.evaluate((el: HTMLImageElement) => {
      const c = document.createElement('canvas');
      c.width = el.naturalWidth;
      c.height = el.naturalHeight;
      const g = c.getContext('2d')!;
      g.drawImage(el, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let lo = 255;
      let hi = 0;
      for (let i = 0; i < d.length; i += 4)
        for (let k = 0; k < 3; k++) [lo, hi] = [Math.min(lo, d[i + k]), Math.max(hi, d[i + k])];
      return hi - lo;
    });
    expect(spread).toBeGreaterThan(0);
    console.info(
      `sd-scale e2e: first load ${(firstMs / 1000).toFixed(1)} s, load from OPFS ${(secondMs / 1000).toFixed(1)} s, 1-step generate ${(generateMs / 1000).toFixed(1)} s`,
    );
    expect(app.errors).toEqual([]);
  },
);
