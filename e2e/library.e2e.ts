// The concept library in a real browser's IndexedDB: it survives reloads, renames and
// deletes through the UI, exports and imports files, lifts an old layout, and never keeps
// half a concept when the tab dies mid-write. (A full disk: quota.e2e.ts.)
import { readFileSync, writeFileSync } from 'node:fs';
import { parseSafetensors, writeSafetensors } from '../src/packs/safetensors.ts';
import { ARTIFACTS, conceptSource, expect, test } from './fixtures.ts';

test('a saved concept is listed after a reload, and renames and deletes through the UI', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  await app.choosePhoto('chelsea.png'); // the thumbnail comes from the photo's crop
  const id = await app.saveConcept({ name: 'Chelsea the cat' });
  await app.saveConcept({ name: 'Second concept' });

  await app.reload();
  await app.goToStep('library');
  expect(await app.libraryNames()).toEqual(['Second concept', 'Chelsea the cat']);
  const card = page.locator(`[data-concept-id="${id}"]`);
  expect(await card.textContent()).toMatch(/S\*.*near: tabby, kitten, cat.*tiny/);
  const thumb = card.locator('img.thumb');
  await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(128);
  await app.screenshot('library');

  // Rename with the keyboard: the button, type, Enter.
  await card.getByRole('button', { name: 'Rename Chelsea the cat' }).focus();
  await page.keyboard.press('Enter');
  const input = card.getByLabel('New name');
  await input.fill('  Chelsea,   on the sofa ');
  await page.keyboard.press('Enter');
  await expect.poll(() => app.libraryNames()).toEqual(['Second concept', 'Chelsea, on the sofa']);

  // Delete asks first; "Keep" cancels, "Delete for good" deletes.
  const second = page.locator('[data-testid="concept-card"]').first();
  await second.getByRole('button', { name: 'Delete Second concept' }).click();
  await second.getByRole('button', { name: 'Keep' }).click();
  expect(await app.libraryNames()).toHaveLength(2);
  await second.getByRole('button', { name: 'Delete Second concept' }).click();
  await second.getByRole('button', { name: 'Delete for good' }).click();
  await expect.poll(() => app.libraryNames()).toEqual(['Chelsea, on the sofa']);

  // "Use" takes the concept to the generate step.
  await page.getByRole('button', { name: 'Use Chelsea, on the sofa' }).click();
  await page.getByTestId('screen-generate').waitFor();
  expect(await page.getByLabel('Concept').inputValue()).toBe(id);
  expect(await page.getByLabel('Prompt', { exact: true }).inputValue()).toContain('S*');

  const raw = await app.rawLibrary();
  expect(raw.schemaVersion).toBe(1);
  expect(raw.indexIds).toEqual([id]);
  expect(raw.records.map((r) => [r.id, r.name, r.complete])).toEqual([[id, 'Chelsea, on the sofa', true]]);
  await app.open();
  await app.goToStep('library');
  expect(await app.libraryNames()).toEqual(['Chelsea, on the sofa']);
  expect(app.errors).toEqual([]);
});

test('export writes a safetensors file that imports back as a new concept; other packs are refused', async ({
  app,
}) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  // Import is strict: it checks the file against the loaded pack.
  await app.goToStep('pack');
  await page.getByLabel(/Tiny pack, bundled/).check();
  await page.getByRole('button', { name: /^Load (model|again)$/ }).click();
  await page.waitForFunction(() => window.__likeness!.state().pack.status === 'done');
  // A concept with the loaded pack's shapes, and one made for another pack.
  await page.evaluate(`(() => {
    const s = window.__likeness.state().pack.summary, r = s.rank;
    const fill = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + 1) / 8);
    return window.__likeness.saveConcept({
      placeholder: 'S*', embedding: fill(s.tokenDim, 0.3), nearestWords: ['tabby'], hardTokenId: 42,
      rank: r, alpha: r, blend: 0.25,
      lora: s.loraTargets.map((t, m) => ({ module: t.module, A: fill(r * t.in, 0.1 + m), aShape: [r, t.in], B: fill(t.out * r, 0.2 + m), bShape: [t.out, r] })),
      lossCurve: [0.4, 0.3], packId: s.id, packHash: s.hash,
    }, { name: 'Mug' });
  })()`);
  await app.goToStep('library');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export Mug', exact: true }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('Mug.safetensors');
  const path = `${ARTIFACTS}/Mug.safetensors`;
  await download.saveAs(path);
  const file = parseSafetensors(new Uint8Array(readFileSync(path)));
  expect(file.metadata.format).toBe('likeness-concept/1');
  expect(file.names()).toContain('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight');

  await page.locator('#concept-import-input').setInputFiles(path);
  await expect.poll(async () => (await app.libraryNames()).filter((n) => n === 'Mug')).toHaveLength(2);
  // The same file claiming another base pack is refused, naming the packs; nothing is added.
  const tensors = file.names().map((name) => ({
    name,
    dtype: file.info(name).dtype as 'F32',
    shape: file.info(name).shape,
    data: file.rawBytes(name),
  }));
  const otherPath = `${ARTIFACTS}/Other.safetensors`;
  writeFileSync(
    otherPath,
    writeSafetensors(tensors, { ...file.metadata, base_pack_hash: 'f'.repeat(64), base_pack_id: 'another pack' }),
  );
  await page.locator('#concept-import-input').setInputFiles(otherPath);
  await expect.poll(async () => (await app.notices()).map((n) => n.message).join(' ')).toMatch(/another pack/);
  expect(await app.libraryNames()).toHaveLength(2);

  // A file that is not a concept is refused with a message; nothing is added.
  await page
    .locator('#concept-import-input')
    .setInputFiles({ name: 'photo.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('nope') });
  await expect.poll(async () => (await app.notices()).map((n) => n.kind)).toContain('bad-file');
  expect(await app.libraryNames()).toHaveLength(2);
  // In the database: two complete records (rawLibrary reads it from a page without the app).
  const raw = await app.rawLibrary();
  expect(raw.records).toHaveLength(2);
  expect(raw.records.every((r) => r.complete)).toBe(true);
});

test('a library in the old v0 layout is migrated on open', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.rawLibrary(); // creates the empty database on a page without the app
  await page.evaluate(`new Promise((resolve, reject) => {
    const open = indexedDB.open('likeness');
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('library', 'readwrite');
      const c = ${conceptSource(512)};
      const { placeholder, ...rest } = c;
      tx.objectStore('library').put({
        id: 'old-1', name: 'From the prototype', token: placeholder, created: '2024-03-04T05:06:07.000Z',
        thumbnailDataUrl: 'data:image/png;base64,', concept: rest,
      }, 'concept:old-1');
      tx.oncomplete = () => { db.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
    open.onerror = () => reject(open.error);
  })`);
  await app.open();
  await app.goToStep('library');
  expect(await app.libraryNames()).toEqual(['From the prototype']);
  expect(await app.notices()).toEqual([]);
  const raw = await app.rawLibrary();
  expect(raw.schemaVersion).toBe(1);
  expect(raw.indexIds).toEqual(['old-1']);
  expect(raw.records[0].complete).toBe(true);
});

test('closing the tab in the middle of a large write never leaves half a concept', async ({ app, browser }) => {
  await app.resetStorage();
  await app.open();
  await app.saveConcept({ name: 'Kept' });
  const outcomes: string[] = [];
  // Close at several points: right after the write is issued, and a little later.
  for (const delayMs of [0, 0, 30, 120]) {
    const page = await browser.context.newPage();
    await page.goto(app.baseUrl);
    await page.waitForFunction(() => window.__likeness?.state().library.status === 'ready');
    await page.evaluate(`window.__likeness.startSaveConcept(${conceptSource(8_000_000)}, { name: 'Interrupted' })`);
    if (delayMs) await page.waitForTimeout(delayMs);
    await page.close({ runBeforeUnload: false });

    const raw = await app.rawLibrary();
    const recordIds = raw.records.map((r) => r.id).sort();
    expect([...raw.indexIds].sort(), 'index and records agree').toEqual(recordIds);
    expect(
      raw.records.every((r) => r.complete),
      'every stored concept is whole',
    ).toBe(true);
    expect(raw.records.filter((r) => r.name === 'Interrupted').every((r) => r.floats > 8_000_000 - 10_000)).toBe(true);
    outcomes.push(raw.records.some((r) => r.name === 'Interrupted') ? 'stored' : 'absent');
    // Start the next round from the one kept concept.
    if (outcomes.at(-1) === 'stored') {
      await app.open();
      await app.goToStep('library');
      const card = app.page.locator('[data-testid="concept-card"]', { hasText: 'Interrupted' });
      await card.getByRole('button', { name: 'Delete Interrupted' }).click();
      await card.getByRole('button', { name: 'Delete for good' }).click();
      await expect.poll(() => app.libraryNames()).toEqual(['Kept']);
    }
  }
  console.log(`interrupted writes: ${outcomes.join(', ')}`);
  await app.open();
  await app.goToStep('library');
  expect(await app.libraryNames()).toEqual(['Kept']);
  expect(await app.notices()).toEqual([]); // no repair was needed
});

test('exports for other tools, imports another tool’s LoRA, shows the blend-1 look', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  await app.goToStep('pack');
  await page.getByLabel(/Tiny pack, bundled/).check();
  await page.getByRole('button', { name: /^Load (model|again)$/ }).click();
  await page.waitForFunction(() => window.__likeness!.state().pack.status === 'done');
  await app.goToStep('library');
  // diffusers' own LoRA file (PEFT names, no embedding, no Likeness metadata).
  await page
    .locator('#concept-import-input')
    .setInputFiles('../shared/data/reference/tiny-sd/lora-goldens.safetensors');
  await expect
    .poll(async () => [...(await app.libraryNames()), ...(await app.notices()).map((n) => n.message)], {
      timeout: 60_000,
    })
    .toEqual(['lora-goldens']);
  const card = page.locator('[data-testid="concept-card"]').first();
  expect(await card.textContent()).toMatch(/lora-goldens/);

  await card.getByLabel('Format for other tools').selectOption('a1111');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.getByRole('button', { name: 'Export lora-goldens for a1111', exact: true }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('lora-goldens-a1111.zip');
  const zip = new Uint8Array(readFileSync(await download.path()));
  const names = new TextDecoder('latin1').decode(zip);
  for (const f of [
    'lora-goldens-a1111/lora-goldens-lora.safetensors',
    'lora-goldens-a1111/lora-goldens.safetensors',
    'lora-goldens-a1111/README.txt',
  ])
    expect(names).toContain(f);

  await card.getByRole('button', { name: 'Show how lora-goldens looks in other tools' }).click();
  await expect.poll(() => card.getByTestId('blend-one-preview').count(), { timeout: 240_000 }).toBe(1);
});
