// Personalize on a pack built without a tuning encoder (what `likeness pack` makes without
// --encoder): the class-word start, its schedule, and the refusals when the word is missing
// or unusable. The encoder start is covered by personalize.test.ts on the tiny pack.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { PHOTOS, tinyPackWithoutEncoderDir } from '../../test/tiny-pack.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import { decodeImage } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/types.ts';
import { PackRuntime } from './pack-runtime.ts';
import {
  CLASS_WORD_SCHEDULE,
  conceptDiffusionLoss,
  DEFAULT_PERSONALIZE,
  personalize,
  prepareImage,
  tuningDefaults,
  type PersonalizeEvent,
} from './personalize.ts';

let rt: PackRuntime;
let photo: RgbaImage;

beforeAll(async () => {
  const engine = await testEngine();
  rt = await PackRuntime.open(engine, await loadPackFromFolder(tinyPackWithoutEncoderDir()));
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))));
});
afterAll(() => rt?.dispose());

const options = (o: Partial<typeof DEFAULT_PERSONALIZE & { seed: number; classWord: string }> = {}) => ({
  ...DEFAULT_PERSONALIZE,
  ...tuningDefaults(false),
  seed: 1,
  ...o,
});

describe('personalize without a tuning encoder', () => {
  it('the pack has no encoder, and the schedule is the encoder-free one', () => {
    expect(rt.encoder).toBeNull();
    expect(rt.manifest.architecture.tuningEncoder).toBeUndefined();
    expect(tuningDefaults(false)).toEqual({
      steps: 60,
      learningRate: 2e-3,
      lambdaWeights: 1e-2,
      lambdaEmbedding: 1e-2,
    });
    expect(tuningDefaults(false)).toEqual({ ...CLASS_WORD_SCHEDULE });
    expect(tuningDefaults(true).steps).toBe(12);
  });

  it('refuses a missing, multi-word or multi-token class word before any work', async () => {
    const live = rt.engine.pool.getStats().liveBytes;
    const events: PersonalizeEvent[] = [];
    await expect(personalize(rt, photo, options({ steps: 1 }), (e) => events.push(e))).rejects.toThrow(
      /no tuning encoder.*class word/,
    );
    await expect(personalize(rt, photo, options({ steps: 1, classWord: '  ' }))).rejects.toThrow(/no tuning encoder/);
    await expect(personalize(rt, photo, options({ steps: 1, classWord: 'big dog' }))).rejects.toThrow(/one word/);
    // A word the CLIP tokenizer splits has no single embedding to start from.
    const split = 'xylophonist';
    expect(rt.tokenizer.encode(split).length).toBeGreaterThan(1);
    await expect(personalize(rt, photo, options({ steps: 1, classWord: split }))).rejects.toThrow(/tokens.*one/);
    expect(events).toEqual([]);
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
  });

  it('starts at the class word exactly (v* = its embedding, B = 0) and records that start', async () => {
    const events: PersonalizeEvent[] = [];
    const c = await personalize(rt, photo, options({ steps: 0, classWord: 'dog' }), (e) => events.push(e));
    const [dog] = rt.tokenizer.encode('dog');
    expect(c.embedding).toEqual(await rt.tokenEmbedding(dog));
    expect(c.lora.every((l) => l.B.every((x) => x === 0))).toBe(true);
    expect(c.lora.some((l) => l.A.some((x) => x !== 0))).toBe(true);
    expect(c.start).toEqual({ kind: 'class-word', word: 'dog' });
    const near = events.find((e) => e.stage === 'nearest');
    expect(near?.stage === 'nearest' && near.start).toEqual({ kind: 'class-word', word: 'dog' });
    expect(near?.stage === 'nearest' && near.fromEncoder).toBe(false);
    // The nearest token of the word's own embedding is the word (cosine 1).
    expect(c.hardTokenId).toBe(dog);
  });

  it('tunes from the class word: the loss is finite, the diffusion loss on fixed samples drops, θ moves', async () => {
    const start = await personalize(rt, photo, options({ steps: 0, classWord: 'dog', seed: 2 }));
    // 4 steps of the schedule's 60 keep the test short; lr 1e-2 makes 4 steps visible.
    const tuned = await personalize(rt, photo, options({ steps: 4, classWord: 'dog', seed: 2, learningRate: 1e-2 }));
    expect(tuned.lossCurve.length).toBe(4);
    expect(tuned.lossCurve.every(Number.isFinite)).toBe(true);
    expect(tuned.start).toEqual({ kind: 'class-word', word: 'dog' });
    expect(tuned.embedding).not.toEqual(start.embedding);
    expect(tuned.lora.some((l) => l.B.some((x) => x !== 0))).toBe(true);
    const fixed = [100, 300, 500, 700, 900, 250, 600, 850].map((t, i) => ({
      t,
      seed: 1000 + i,
      view: i % 4,
      template: i,
    }));
    const img = prepareImage(rt, photo);
    try {
      const before = await conceptDiffusionLoss(rt, start, img, fixed);
      const after = await conceptDiffusionLoss(rt, tuned, img, fixed);
      console.info(
        `class-word start: diffusion loss on 8 fixed samples ${before.toFixed(5)} → ${after.toFixed(5)} after 4 steps`,
      );
      expect(after).toBeLessThan(before);
    } finally {
      img.latents.dispose();
      img.clipPixels.dispose();
    }
  });
});
