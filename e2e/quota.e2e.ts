// A full disk, simulated with Chromium's per-origin quota override, is reported with what
// to do, and the library keeps exactly what it had. Its own file (so its own browser
// profile): the override only reaches database connections opened after it is set, which a
// profile where the origin has never opened the library guarantees.
import { conceptSource, expect, test } from './fixtures.ts';

test('a full disk is reported with what to do, and nothing is half-written', async ({ app }) => {
  const { page, baseUrl } = app;
  const origin = `${new URL(baseUrl).origin}/`;
  await app.resetStorage();
  // A 1 MiB quota for this origin (the key needs the trailing slash).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1024 * 1024 });
  try {
    await app.open();
    await app.saveConcept({ name: 'Small' });
    const before = await app.rawLibrary();
    await app.open();
    const err = await page.evaluate(
      `window.__likeness.saveConcept(${conceptSource(2_000_000)}, { name: 'Too big' }).then(() => null, (e) => e.code)`,
    );
    expect(err).toBe('quota');
    const notices = await app.notices();
    expect(notices.map((n) => [n.area, n.kind])).toEqual([['library', 'quota']]);
    expect(notices[0].message).toBe('Could not save “Too big”: the browser’s storage for this site is full.');
    await app.goToStep('library');
    expect(await app.libraryNames()).toEqual(['Small']);
    await app.screenshot('library-quota');
    expect(await app.rawLibrary()).toEqual(before);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  }
});
