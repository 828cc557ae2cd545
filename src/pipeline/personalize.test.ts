import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { decodeImage } from './image/decode-node.ts';
import type { RgbaImage } from './image/types.ts';
import { PackRuntime } from './pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize, type PersonalizeEvent } from './personalize.ts';

let rt: PackRuntime;
let photo: RgbaImage;

beforeAll(async () => {
  const engine = await testEngine();
  rt = await PackRuntime.open(engine, await loadTinyPack());
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))));
});
afterAll(() => rt?.dispose());

describe('personalize on the tiny pack', () => {
  it('runs 12 steps, reports nearest words and a loss per step, and frees its memory', async () => {
    const events: PersonalizeEvent[] = [];
    const before = rt.engine.pool.getStats().liveBytes;
    const t0 = performance.now();
    const concept = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 1 }, (e) => events.push(e));
    const ms = performance.now() - t0;
    const steps = events.filter((e) => e.stage === 'tuning');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(steps.every((e) => Number.isFinite(e.loss))).toBe(true);
    const near = events.find((e) => e.stage === 'nearest');
    expect(near && near.words.length).toBe(5);
    expect(concept.embedding.length).toBe(32);
    expect(concept.lora.length).toBe(32);
    expect(concept.lossCurve.length).toBe(12);
    void before; // the first run uploads the pack's weights; the leak check runs second
    console.info(`personalize: ${ms.toFixed(0)} ms, near: ${near?.stage === 'nearest' ? near.words.join(', ') : ''}, losses ${concept.lossCurve.map((l) => l.toFixed(3)).join(' ')}`);
    // Same seed → the same concept, bit for bit; and nothing stays allocated.
    const live = rt.engine.pool.getStats().liveBytes;
    const again = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 1 });
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
    expect(again.embedding).toEqual(concept.embedding);
    expect(again.lossCurve).toEqual(concept.lossCurve);
    expect(again.lora[7].B).toEqual(concept.lora[7].B);
  });
});
