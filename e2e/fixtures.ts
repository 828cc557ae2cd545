// Typed fixtures for the browser tests: one Chromium (fresh profile) per test file, one
// page per test driving the app the way a person does, plus helpers that read the app's
// state through `window.__likeness` and the raw IndexedDB contents (for checks the app's own
// code must not be trusted with).
import { mkdirSync } from 'node:fs';
import { inject, test as base } from 'vitest';
import type { Page } from 'playwright-core';
import type { AppState, StepId } from '../src/ui/store/index.ts';
import { launchBrowser, type LaunchedBrowser } from './chromium.ts';

export const ARTIFACTS = 'e2e/artifacts';
export const PHOTOS = new URL('../../shared/data/photos', import.meta.url).pathname;

export interface FileInput {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** What a raw look at the library database finds (read without the app's code). */
export interface RawLibrary {
  keys: string[];
  schemaVersion: unknown;
  indexIds: string[];
  /** Per concept record: id, name and whether every tensor has the length its shape says. */
  records: { id: string; name: string; complete: boolean; floats: number }[];
}

export interface AppPage {
  page: Page;
  baseUrl: string;
  /** Uncaught page errors and console errors so far. */
  errors: string[];
  /** Opens the app and waits until it has probed the GPU and opened the library. */
  open(): Promise<void>;
  reload(): Promise<void>;
  /** Deletes the library database (via a same-origin page that does not run the app). */
  resetStorage(): Promise<void>;
  /** Clicks a step in the step navigation. */
  goToStep(step: StepId): Promise<void>;
  /** Goes to the photo step and picks a file with its file input, as the file chooser would. */
  choosePhoto(file: FileInput | string): Promise<void>;
  /** Reads part of the store. */
  state<T>(pick: (s: AppState) => T): Promise<T>;
  /** The messages in the message area. */
  notices(): Promise<{ kind: string; area: string; message: string }[]>;
  /** Names shown in the library list, in order. */
  libraryNames(): Promise<string[]>;
  /** Saves a synthetic concept through the store's API (as a finished personalization does). */
  saveConcept(options?: { name?: string; loraFloats?: number }): Promise<string>;
  /**
   * The library database as stored, read with raw IndexedDB calls on a same-origin page
   * without the app (the page is left there: call open() to come back).
   */
  rawLibrary(): Promise<RawLibrary>;
  screenshot(name: string): Promise<void>;
}

/** A ConceptData of roughly `loraFloats` LoRA numbers, built in the page (typed arrays do not cross evaluate). */
export function conceptSource(loraFloats: number): string {
  return `(() => {
    const rank = 4, dim = 64;
    const modules = Math.max(1, Math.round(${loraFloats} / (2 * rank * dim)));
    const fill = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + 1) / 8);
    return {
      placeholder: 'S*',
      embedding: fill(32, 0.3),
      nearestWords: ['tabby', 'kitten', 'cat'],
      hardTokenId: 42,
      rank, alpha: rank, blend: 0.25,
      lora: Array.from({ length: modules }, (_, m) => ({
        module: 'down_blocks.0.attentions.0.transformer_blocks.' + m + '.attn1.to_q',
        A: fill(rank * dim, 0.1 + m), aShape: [rank, dim],
        B: fill(dim * rank, 0.2 + m), bShape: [dim, rank],
      })),
      lossCurve: [0.41, 0.33, 0.29, 0.27, 0.26],
      packId: 'tiny', packHash: '0123456789abcdef',
    };
  })()`;
}

// Raw IndexedDB, independent of idb-keyval and of the app (runs in the page as a string).
const RAW_LIBRARY = `new Promise((resolve, reject) => {
  const open = indexedDB.open('likeness');
  open.onerror = () => reject(open.error);
  open.onupgradeneeded = () => open.result.createObjectStore('library');
  open.onsuccess = () => {
    const db = open.result;
    const tx = db.transaction('library', 'readonly');
    const os = tx.objectStore('library');
    const out = { keys: [], schemaVersion: undefined, indexIds: [], records: [] };
    const keysReq = os.getAllKeys();
    keysReq.onsuccess = () => {
      out.keys = keysReq.result.map(String);
      for (const key of out.keys) {
        const r = os.get(key);
        r.onsuccess = () => {
          const v = r.result;
          if (key === 'meta:schemaVersion') out.schemaVersion = v;
          else if (key === 'meta:index') out.indexIds = v.concepts.map((c) => c.id);
          else if (key.startsWith('concept:')) {
            let floats = v.embedding.length, complete = v.embedding.length > 0;
            for (const l of v.lora) {
              floats += l.A.length + l.B.length;
              complete &&= l.A.length === l.aShape[0] * l.aShape[1] && l.B.length === l.bShape[0] * l.bShape[1];
            }
            out.records.push({ id: v.id, name: v.name, complete, floats });
          }
        };
      }
    };
    tx.oncomplete = () => { db.close(); resolve(out); };
    tx.onerror = () => reject(tx.error);
  };
})`;

export const test = base
  // eslint-disable-next-line no-empty-pattern
  .extend('browser', { scope: 'file' }, async ({}, { onCleanup }): Promise<LaunchedBrowser> => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const browser = await launchBrowser();
    onCleanup(() => browser.close());
    return browser;
  })
  .extend('app', async ({ browser }, { onCleanup }): Promise<AppPage> => {
    const baseUrl = inject('baseUrl');
    const page = await browser.context.newPage();
    onCleanup(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // Chromium asks every document for /favicon.ico; the blank storage page has none.
      if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico'))
        errors.push(`console: ${m.text()} (${m.location().url})`);
    });
    // A blank same-origin document: storage checks there run none of the app's code.
    const blank = new URL('favicon.svg', baseUrl).href;

    const app: AppPage = {
      page,
      baseUrl,
      errors,
      async open() {
        await page.goto(baseUrl);
        await page.getByRole('heading', { name: 'Likeness', level: 1 }).waitFor();
        await page.waitForFunction(() => {
          const s = window.__likeness?.state();
          return s && s.gpu.status === 'done' && s.library.status !== 'loading';
        });
      },
      async reload() {
        await app.open();
      },
      async resetStorage() {
        await page.goto(blank);
        await page.evaluate(
          () =>
            new Promise<void>((resolve, reject) => {
              const r = indexedDB.deleteDatabase('likeness');
              r.onsuccess = () => resolve();
              r.onerror = () => reject(r.error ?? new Error('deleteDatabase failed'));
              r.onblocked = () => reject(new Error('deleteDatabase blocked: another page holds the library open'));
            }),
        );
      },
      async goToStep(step) {
        await page.getByTestId(`step-${step}`).click();
        await page.getByTestId(`screen-${step}`).waitFor();
      },
      async choosePhoto(file) {
        if ((await app.state((s) => s.step)) !== 'photo') await app.goToStep('photo');
        await page.locator('#photo-input').setInputFiles(typeof file === 'string' ? `${PHOTOS}/${file}` : file);
        await page.waitForFunction(() => window.__likeness?.state().photo.status !== 'checking');
      },
      state(pick) {
        return page.evaluate(`(${pick.toString()})(window.__likeness.state())`);
      },
      notices() {
        return page.evaluate(() =>
          window.__likeness!.state().notices.map((n) => ({ kind: n.kind, area: n.area, message: n.message })),
        );
      },
      async libraryNames() {
        return page.getByTestId('concept-name').allTextContents();
      },
      async saveConcept(options = {}) {
        const name = JSON.stringify(options.name ?? null);
        return page.evaluate<string>(
          `window.__likeness.saveConcept(${conceptSource(options.loraFloats ?? 4096)}, ${name} === null ? {} : { name: ${name} })`,
        );
      },
      async rawLibrary() {
        await page.goto(blank);
        return page.evaluate<RawLibrary>(RAW_LIBRARY);
      },
      async screenshot(name) {
        await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
      },
    };
    return app;
  });

export { expect } from 'vitest';
