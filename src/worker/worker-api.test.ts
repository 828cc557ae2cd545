// The worker's API in Node, on a real engine (Dawn), with a picked folder as the pack source
// and a memory cache: everything the browser worker does except OPFS and the browser's
// image decoder (decode-node stands in).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../engine/engine.ts';
import { MemoryPackCache } from '../packs/pack-cache.ts';
import { decodeImage } from '../image/decode-node.ts';
import { PHOTOS, tinyPackDir, tinyPackWithoutEncoderDir } from '../../test/tiny-pack.ts';
import type {
  GenerateProgress,
  GenerateRequest,
  PackSummary,
  PersonalizeProgress,
  WorkerError,
} from '../domain/types.ts';
import { applyCrop, createWorkerApi } from './worker-api.ts';

function folder(dir: string): File[] {
  const out: File[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const f = new File([readFileSync(full)], name);
        Object.defineProperty(f, 'webkitRelativePath', { value: `tiny/${relative(dir, full).split('\\').join('/')}` });
        out.push(f);
      }
    }
  };
  walk(dir);
  return out;
}

const engines: Engine[] = [];
const api = createWorkerApi({
  createEngine: async () => {
    const e = await Engine.create();
    engines.push(e);
    return e;
  },
  openCache: async () => ({ cache: new MemoryPackCache(), kind: 'memory', note: 'memory in tests' }),
  decodeImage: (bytes) => decodeImage(bytes),
});
let summary: PackSummary;

const request = (o: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: 'a photo of a cat',
  negativePrompt: '',
  steps: 2,
  guidance: 7.5,
  sampler: 'ddim',
  blend: 0.25,
  batch: 1,
  seed: 3,
  concept: null,
  runtime: 'engine',
  ...o,
});

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: WorkerError) => e,
  );

beforeAll(async () => {
  summary = await api.loadPack('pack-1', { kind: 'files', files: folder(tinyPackDir()) }, () => {});
});
afterAll(() => {
  api.host.dropEngine();
  for (const e of engines) if (!e.isLost) e.destroy();
});

describe('the worker API on the tiny pack', () => {
  it('loads a folder pack: summary, progress, and the memory-cache note', async () => {
    expect(summary).toMatchObject({
      id: 'tiny',
      tokenDim: 32,
      rank: 4,
      storage: 'memory',
      storageNote: 'memory in tests',
      offline: false,
    });
    expect(summary.hash).toBe((await api.host.runtime()).hash);
    const report = await api.probeGpu();
    expect(report.ok).toBe(true);
  });

  it('generates with previews per step, batch seeds, and results as plain data', async () => {
    const events: GenerateProgress[] = [];
    const images = await api.generate('g-1', request({ batch: 2 }), (p) => events.push(p));
    expect(images.map((i) => [i.width, i.height, i.seed, i.rgba.length])).toEqual([
      [16, 16, 3, 1024],
      [16, 16, 4, 1024],
    ]);
    expect(Object.keys(images[0]).sort()).toEqual(['height', 'rgba', 'seed', 'width']);
    expect(events.map((e) => `${e.step}/${e.steps}:${e.previews.length}`)).toEqual([
      '1/4:1',
      '2/4:1',
      '3/4:2',
      '4/4:2',
    ]);
    expect(events[0].previews[0]).toMatchObject({ width: 8, height: 8, seed: 3 });
  });

  it('refuses bad requests as bad-input before doing any work', async () => {
    expect(await rejection(api.generate('g-2', request({ steps: 0 }), () => {}))).toMatchObject({
      kind: 'bad-input',
      message: expect.stringMatching(/^Steps must be/),
    });
    expect(await rejection(api.generate('g-3', request({ sampler: 'plms' as never }), () => {}))).toMatchObject({
      kind: 'bad-input',
    });
    const concept = { packId: 'other', packHash: 'f'.repeat(64) } as GenerateRequest['concept'];
    expect(await rejection(api.generate('g-4', request({ concept }), () => {}))).toMatchObject({
      kind: 'bad-input',
      message: expect.stringContaining('made with the pack “other”'),
    });
    const bad = await rejection(
      api.personalize(
        'p-0',
        { image: new Uint8Array([1, 2, 3]), mime: 'image/png', crop: null, placeholder: 'S*', steps: 1, seed: 0 },
        () => {},
      ),
    );
    expect(bad?.kind).toBe('bad-input');
    // The placeholder rules concept import applies (issue 12): one word, visible.
    for (const placeholder of ['my dog', 'S\u200b*', '<|endoftext|>']) {
      const refused = await rejection(
        api.personalize(
          'p-ph',
          { image: new Uint8Array([1]), mime: 'image/png', crop: null, placeholder, steps: 1, seed: 0 },
          () => {},
        ),
      );
      expect(refused, placeholder).toMatchObject({
        kind: 'bad-input',
        message: expect.stringMatching(/^The placeholder word /),
      });
    }
  });

  it('checks an imported concept’s fields against the pack’s vocabulary for the library', async () => {
    const fields = { placeholder: 'S*', hardTokenId: 2368, rank: 4, alpha: 4, blend: 0.25 };
    expect(summary.vocabSize).toBe(49408);
    expect(await api.conceptProblems(fields)).toEqual([]);
    expect((await api.conceptProblems({ ...fields, placeholder: 'a' })).join()).toMatch(
      /"a" is a word the model already knows/,
    );
    expect((await api.conceptProblems({ ...fields, hardTokenId: 49408 })).join()).toMatch(/49408-token vocabulary/);
    expect((await api.conceptProblems({ ...fields, alpha: 1e30 })).join()).toMatch(/alpha/);
  });

  it('cancel rejects at once and frees the GPU for the next job', async () => {
    let cancelledAt = -1;
    let lastStep = 0;
    const run = api.generate('g-5', request({ steps: 30 }), (p) => {
      lastStep = p.step;
      if (p.step === 2 && cancelledAt < 0) {
        cancelledAt = performance.now();
        api.cancel('g-5');
      }
    });
    const e = await rejection(run);
    const latency = performance.now() - cancelledAt;
    expect(e).toEqual({ kind: 'cancelled', message: 'Cancelled.' });
    expect(latency).toBeLessThan(100);
    expect(lastStep).toBeLessThan(30);
    // The next job waits for the cancelled one to stop, then runs.
    const [img] = await api.generate('g-6', request(), () => {});
    expect(img.seed).toBe(3);
  });

  it('personalizes a cropped photo, reporting nearest words and each step', async () => {
    const events: PersonalizeProgress[] = [];
    const concept = await api.personalize(
      'p-1',
      {
        image: new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))),
        mime: 'image/png',
        crop: { x: 100, y: 20, size: 200 },
        placeholder: 'S*',
        steps: 2,
        seed: 1,
      },
      (p) => events.push(p),
    );
    expect(events.map((e) => e.stage)).toEqual(['encoding', 'nearest', 'tuning', 'tuning', 'done']);
    expect(events[1]).toMatchObject({
      stage: 'nearest',
      words: concept.nearestWords,
      start: { kind: 'encoder', trained: false },
    });
    expect(concept.start).toEqual({ kind: 'encoder', trained: false });
    expect(concept.nearestWords).toHaveLength(5);
    expect(concept.lossCurve).toHaveLength(2);
    expect(concept.packHash).toBe(summary.hash);
    // And the concept generates.
    const [img] = await api.generate('g-7', request({ prompt: 'a photo of S*', concept }), () => {});
    expect(img.rgba.length).toBe(1024);
  });

  it('a diverging tuning run fails as numerical and hands back the encoder’s prediction', async () => {
    const rt = await api.host.runtime();
    const lr = rt.manifest.defaults.tuningLearningRate;
    rt.manifest.defaults.tuningLearningRate = Number.NaN;
    try {
      const e = await rejection(
        api.personalize(
          'p-2',
          {
            image: new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))),
            mime: 'image/png',
            crop: null,
            placeholder: 'S*',
            steps: 3,
            seed: 2,
          },
          () => {},
        ),
      );
      expect(e?.kind).toBe('numerical');
      expect(e?.message).toMatch(/diverged at step 2/);
      expect(e?.fallback?.embedding.every(Number.isFinite)).toBe(true);
      expect(e?.fallback?.lora).toHaveLength(32);
      expect(structuredClone(e)).toEqual(e);
    } finally {
      rt.manifest.defaults.tuningLearningRate = lr;
    }
  });

  it('after the device is lost, the next call gets a new engine and the pack again, with the same image', async () => {
    const [before] = await api.generate('g-8', request(), () => {});
    const engine = await api.host.engine();
    engine.device.destroy();
    await engine.device.lost;
    expect(engine.isLost).toBe(true);
    const [after] = await api.generate('g-9', request(), () => {});
    expect(await api.host.engine()).not.toBe(engine);
    expect(api.host.recoveries).toBe(1);
    expect(after.rgba).toEqual(before.rgba);
  });

  it('a device lost in the middle of a job fails it as device-lost; the next call works', async () => {
    const run = api.generate('g-10', request({ steps: 6 }), (p) => {
      if (p.step === 1) void api.host.engine().then((e) => e.device.destroy());
    });
    const e = await rejection(run);
    expect(e?.kind).toBe('device-lost');
    expect(e?.message).toMatch(/reloaded on your next try/);
    const [img] = await api.generate('g-11', request(), () => {});
    expect(img.rgba.length).toBe(1024);
  });

  // Last: it replaces the loaded pack.
  it('a pack without a tuning encoder: the summary says so, personalize needs a class word and starts from it', async () => {
    const bare = await api.loadPack('pack-2', { kind: 'files', files: folder(tinyPackWithoutEncoderDir()) }, () => {});
    expect(bare).toMatchObject({ hasTuningEncoder: false, tuningSteps: 60 });
    const photo = new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png')));
    const req = { image: photo, mime: 'image/png', crop: null, placeholder: 'S*', steps: 1, seed: 1 };
    const missing = await rejection(api.personalize('p-3', req, () => {}));
    expect(missing?.kind).toBe('bad-input');
    expect(missing?.message).toMatch(/no tuning encoder.*Type one word/);
    const split = await rejection(api.personalize('p-4', { ...req, classWord: 'xylophonist' }, () => {}));
    expect(split?.kind).toBe('bad-input');
    expect(split?.message).toMatch(/^The class word "xylophonist" is \d+ tokens/);
    const events: PersonalizeProgress[] = [];
    const concept = await api.personalize('p-5', { ...req, classWord: ' dog ' }, (p) => events.push(p));
    expect(concept.start).toEqual({ kind: 'class-word', word: 'dog' });
    expect(events.find((e) => e.stage === 'nearest')).toMatchObject({ start: { kind: 'class-word', word: 'dog' } });
    expect(concept.packHash).toBe(bare.hash);
  });
});

describe('applyCrop', () => {
  const img = { width: 6, height: 4, data: Uint8ClampedArray.from({ length: 96 }, (_, i) => i) };
  it('crops the square in upright pixels, or the centred square without one', () => {
    expect(applyCrop(img, { x: 2, y: 1, size: 3 })).toMatchObject({ width: 3, height: 3 });
    expect(applyCrop(img, { x: 2, y: 1, size: 3 }).data.slice(0, 4)).toEqual(
      img.data.slice((1 * 6 + 2) * 4, (1 * 6 + 2) * 4 + 4),
    );
    expect(applyCrop(img, null)).toMatchObject({ width: 4, height: 4 });
  });
  it('refuses a crop outside the photo with a message', () => {
    expect(() => applyCrop(img, { x: 4, y: 0, size: 3 })).toThrow(/does not lie inside the 6 × 4 photo/);
    expect(() => applyCrop(img, { x: Number.NaN, y: 0, size: 3 })).toThrow(/not a square/);
  });

  it('imports another tool’s LoRA as a concept, refusals as bad-input with what was found', async () => {
    const lora = new Uint8Array(
      readFileSync(new URL('../../../shared/data/reference/tiny-sd/lora-goldens.safetensors', import.meta.url)),
    );
    // The test before replaced the loaded pack: load the tiny pack again.
    const tiny = await api.loadPack('pack-3', { kind: 'files', files: folder(tinyPackDir()) }, () => {});
    const concept = await api.importForeign('i-1', { files: [{ name: 'my-style.safetensors', bytes: lora }] });
    expect(concept).toMatchObject({ placeholder: 'my-style', blend: 1, rank: 4, alpha: 4, packHash: tiny.hash });
    expect(concept.lora).toHaveLength(32);
    const [img] = await api.generate(
      'i-2',
      request({ prompt: 'a photo of my-style', concept, rng: 'torch' }),
      () => {},
    );
    expect(img.seed).toBe(3);
    const e = await rejection(
      api.importForeign('i-3', { files: [{ name: 'x.safetensors', bytes: new Uint8Array(16) }] }),
    );
    expect(e).toMatchObject({ kind: 'bad-input' });
    expect(await rejection(api.generate('i-4', request({ rng: 'mt' as never }), () => {}))).toMatchObject({
      kind: 'bad-input',
    });
  });
});
