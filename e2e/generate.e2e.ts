// The generate form and the gallery: settings controls work from the keyboard, and a
// downloaded PNG carries its generation settings in text chunks with valid CRCs.
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ARTIFACTS, expect, test } from './fixtures.ts';

/** Chunk list read in Node with node:zlib's CRC, independent of the app's PNG code. */
function chunks(png: Buffer) {
  const out: { type: string; data: Buffer; crcOk: boolean }[] = [];
  for (let at = 8; at < png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    out.push({ type, data, crcOk: crc32(png.subarray(at + 4, at + 8 + len)) === png.readUInt32BE(at + 8 + len) });
    at += 12 + len;
  }
  return out;
}

test('the settings controls respond to the keyboard', async ({ app }) => {
  const { page } = app;
  await app.open();
  await app.goToStep('generate');
  await page.getByLabel('Prompt', { exact: true }).fill('a photo of S* on a beach');
  const seedBefore = await app.state((s) => s.generate.seed);
  await page.getByRole('button', { name: 'Random seed' }).focus();
  await page.keyboard.press('Enter');
  expect(await app.state((s) => s.generate.seed)).not.toBe(seedBefore);
  expect(Number(await page.getByLabel('Seed', { exact: true }).inputValue())).toBe(
    await app.state((s) => s.generate.seed),
  );
  await page.getByLabel('Sampler', { exact: true }).selectOption('euler');
  await page.getByLabel(/Blend α/).focus();
  await page.keyboard.press('ArrowRight');
  await page.getByLabel('Batch', { exact: true }).fill('3');
  expect(await app.state((s) => [s.generate.prompt, s.generate.sampler, s.generate.blend, s.generate.batch])).toEqual([
    'a photo of S* on a beach',
    'euler',
    0.3,
    3,
  ]);
  // Without a model the Generate button says why it waits.
  const ready = await app.state((s) => s.pack.status === 'done');
  expect(
    await page.getByTestId('screen-generate').getByRole('button', { name: 'Generate', exact: true }).isDisabled(),
  ).toBe(!ready);
});

test('a gallery image downloads as a PNG that carries its settings', async ({ app }) => {
  const { page } = app;
  await app.open();
  await app.goToStep('generate');
  // A finished image handed to the store as a finished generation hands it over.
  await page.evaluate(async () => {
    const w = 48;
    const h = 32;
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) rgba.set([(x * 255) / w, (y * 255) / h, 128, 255], 4 * (y * w + x));
    await window.__likeness!.addGalleryImages([{ width: w, height: h, rgba, seed: 1234 }], {
      prompt: 'a watercolor of S* in Paris — café ☕',
      negativePrompt: 'blurry',
      steps: 20,
      guidance: 7.5,
      sampler: 'dpmpp-2m',
      blend: 0.25,
      batch: 1,
      seed: 1234,
      runtime: 'onnx',
    });
  });
  const item = page.getByTestId('gallery-item');
  await item.waitFor();
  await app.screenshot('generate-gallery');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: 'Download PNG (seed 1234)' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('a-watercolor-of-S-in-Paris-1234.png');
  const path = `${ARTIFACTS}/gallery-download.png`;
  await download.saveAs(path);
  const png = readFileSync(path);
  const list = chunks(png);
  expect(list.every((c) => c.crcOk)).toBe(true);
  expect(list[0].type).toBe('IHDR');
  expect([list[0].data.readUInt32BE(0), list[0].data.readUInt32BE(4)]).toEqual([48, 32]);
  expect(list.at(-1)!.type).toBe('IEND');
  const params = list.find((c) => c.type === 'tEXt' && c.data.toString('latin1').startsWith('parameters\0'));
  // The prompt has a character Latin-1 lacks, so the settings travel as UTF-8 iTXt.
  const itxt = list.filter((c) => c.type === 'iTXt').map((c) => c.data.toString('utf8'));
  expect(params).toBeUndefined();
  expect(itxt.find((t) => t.startsWith('parameters\0'))).toContain(
    'a watercolor of S* in Paris — café ☕\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1234, Size: 48x32',
  );
  const json = itxt.find((t) => t.startsWith('likeness\0'))!;
  expect(JSON.parse(json.slice(json.lastIndexOf('\0') + 1))).toMatchObject({
    seed: 1234,
    sampler: 'dpmpp-2m',
    width: 48,
    height: 32,
  });
  expect(list.find((c) => c.type === 'tEXt')!.data.toString('latin1')).toBe('Software\0Likeness');

  // The browser decodes the file it produced.
  const size = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    return [bmp.width, bmp.height];
  }, png.toString('base64'));
  expect(size).toEqual([48, 32]);
});
