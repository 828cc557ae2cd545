import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { launchBrowser, type LaunchedBrowser } from './chromium.ts';

let browser: LaunchedBrowser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

it('boots and reports the WebGPU adapter acquired in the worker', async () => {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(inject('baseUrl'));
  await expect.poll(() => page.getByRole('heading', { name: 'Likeness' }).count()).toBe(1);
  const status = page.getByTestId('gpu-status');
  await status.getByTestId('gpu-name').waitFor({ timeout: 60_000 });
  // Debian chromium's WebGPU is SwiftShader; a real GPU would name itself here instead.
  expect((await status.textContent()) ?? '').toMatch(/GPU: .+/);
  await page.screenshot({ path: 'e2e/artifacts/app-shell.png' });
  expect(errors).toEqual([]);
});
