// Every screen renders, is reachable with the keyboard alone, labels all its controls and
// fits a phone's width; the GPU report and worker errors reach the screen.
import { STEPS, type StepId } from '../src/ui/store/index.ts';
import { expect, test } from './fixtures.ts';

test('each screen is reachable by keyboard, labels its controls, and is screenshotted', async ({ app }) => {
  const { page } = app;
  await app.resetStorage();
  await app.open();
  for (const { id } of STEPS) {
    // From the top of the page, Tab until the step's button has focus, then press Enter.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((t) => document.activeElement?.getAttribute('data-testid') === t, `step-${id}`);
    }
    expect(reached, `Tab reaches the ${id} step`).toBe(true);
    // Focus must be visible where it lands.
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByTestId(`screen-${id}`).waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('main');
    expect(await page.getByTestId(`step-${id}`).getAttribute('aria-current')).toBe('step');

    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unlabelled).toEqual([]);
    await app.screenshot(`screen-${id}`);
  }
  expect(app.errors).toEqual([]);
});

test('the pack form, the URL check and the worker’s answer reach the message area', async ({ app }) => {
  const { page } = app;
  await app.open();
  await page.getByLabel('From an address').check();
  await page.getByRole('button', { name: 'Load model' }).click();
  expect(await app.notices()).toEqual([
    { kind: 'bad-url', area: 'pack', message: 'Enter the address of a pack’s manifest.json first.' },
  ]);
  await page.getByLabel('Manifest address').fill('ftp://example.com/pack');
  await page.getByRole('button', { name: 'Load model' }).click();
  await expect
    .poll(async () => (await app.notices())[0]?.message)
    .toBe('“ftp://example.com/pack” is not an http(s) address.');

  // The bundled pack: whatever the worker answers is shown — a summary, or its error verbatim.
  await page.getByLabel(/Tiny pack, bundled/).check();
  await page.getByRole('button', { name: /Load/ }).click();
  await page.waitForFunction(() => ['done', 'failed'].includes(window.__likeness!.state().pack.status));
  const status = await app.state((s) => s.pack.status);
  if (status === 'done') {
    await page.getByTestId('pack-summary').waitFor();
  } else {
    const notices = await app.notices();
    expect(notices).toHaveLength(1);
    expect(notices[0].area).toBe('pack');
    expect(notices[0].message.length).toBeGreaterThan(10);
    const shown = await page.getByTestId('notice').first().textContent();
    expect(shown).toContain(notices[0].message);
    expect(shown).toMatch(/Model:/);
  }
  await app.screenshot('pack-after-load');
});

test('the GPU report names the adapter or explains what is missing', async ({ app }) => {
  await app.open();
  const report = await app.state((s) => (s.gpu.status === 'done' ? s.gpu.report : null));
  const panel = app.page.getByTestId('gpu-status');
  if (report?.ok) {
    expect(await panel.getByTestId('gpu-name').textContent()).toBe(report.info.name);
    expect(await panel.getByTestId('cap-f16').textContent()).toMatch(report.info.f16 ? /fp16 shaders/ : /fp32/);
  } else {
    expect(await panel.getByTestId('gpu-fallback').textContent()).toMatch(/need WebGPU/);
  }
});

test('every screen fits a phone’s width', async ({ app }) => {
  const { page } = app;
  await page.setViewportSize({ width: 360, height: 780 });
  await app.open();
  await app.choosePhoto('chelsea.png');
  for (const id of ['pack', 'photo', 'personalize', 'generate', 'library'] as StepId[]) {
    await app.goToStep(id);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow, `${id} screen overflows by ${overflow}px`).toBeLessThanOrEqual(0);
    if (id === 'photo' || id === 'generate') await app.screenshot(`phone-${id}`);
  }
  // Dark mode follows the OS setting.
  await page.emulateMedia({ colorScheme: 'dark' });
  await app.goToStep('photo');
  const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  expect(bg).toBe('rgb(18, 20, 23)');
  await app.screenshot('phone-photo-dark');
});
