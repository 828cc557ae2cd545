// The one resolution order (request → concept → pack manifest → DEFAULTS) and the one check
// of each request value, without a GPU.
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../domain/defaults.ts';
import type { ConceptData } from '../domain/types.ts';
import type { GenerationDefaults } from '../packs/manifest.ts';
import { resolveGenerate, resolvePersonalize } from './resolve-settings.ts';

// A manifest's defaults that differ from DEFAULTS everywhere, so each source is visible.
const pack: GenerationDefaults = {
  steps: 30,
  guidanceScale: 5,
  sampler: 'euler',
  blend: 0.4,
  negativePrompt: 'blurry',
  batchSize: 2,
  placeholder: 'V*',
  tuningSteps: 8,
  tuningLearningRate: 1e-3,
  nearestWords: 3,
};
const concept = { blend: 0.7 } as ConceptData;

describe('resolveGenerate', () => {
  it('takes the pack manifest, then DEFAULTS for what a manifest lacks', () => {
    expect(resolveGenerate({ prompt: 'p', concept: null }, pack)).toEqual({
      prompt: 'p',
      negativePrompt: 'blurry',
      steps: 30,
      guidance: 5,
      sampler: 'euler',
      blend: 0.4,
      batch: 2,
      seed: DEFAULTS.generate.seed,
      concept: null,
      runtime: DEFAULTS.generate.runtime,
      rng: DEFAULTS.generate.rng,
    });
  });
  it('blend: the request, else the concept’s stored blend, else the pack’s', () => {
    expect(resolveGenerate({ prompt: 'p', concept }, pack).blend).toBe(0.7);
    expect(resolveGenerate({ prompt: 'p', concept, blend: 0.1 }, pack).blend).toBe(0.1);
    expect(resolveGenerate({ prompt: 'p', concept: null, blend: 0 }, pack).blend).toBe(0);
  });
  it('refuses request values out of range with what was given', () => {
    expect(() => resolveGenerate({ prompt: 'p', concept: null, steps: 0 }, pack)).toThrow(
      /^Steps must be a whole number from 1 to 1000, not 0/,
    );
    expect(() => resolveGenerate({ prompt: 'p', concept: null, blend: 1.5 }, pack)).toThrow(/^Blend α must be/);
    expect(() => resolveGenerate({ prompt: 'p', concept: null, sampler: 'plms' as never }, pack)).toThrow(
      /^The sampler must be one of ddim/,
    );
    expect(() => resolveGenerate({ prompt: 'p', concept: null, rng: 'mt' as never }, pack)).toThrow(/random generator/);
    expect(() => resolveGenerate({ prompt: 'p', concept: null, seed: -1 }, pack)).toThrow(/^The seed must be/);
    expect(() => resolveGenerate({ prompt: 1 as never, concept: null }, pack)).toThrow(/prompt is missing/);
  });
});

describe('resolvePersonalize', () => {
  it('an encoder pack tunes on the manifest’s schedule, the request overriding it', () => {
    const s = resolvePersonalize({ image: new Uint8Array(1), mime: 'image/png', crop: null }, pack, true);
    expect(s).toMatchObject({
      placeholder: 'V*',
      steps: 8,
      learningRate: 1e-3,
      nearestWords: 3,
      seed: DEFAULTS.personalize.seed,
    });
    expect(s.lambdaWeights).toBe(DEFAULTS.personalize.lambdaWeights);
    const o = resolvePersonalize(
      { image: new Uint8Array(1), mime: 'image/png', crop: null, steps: 2, learningRate: 5e-3 },
      pack,
      true,
    );
    expect(o).toMatchObject({ steps: 2, learningRate: 5e-3 });
  });
  it('a pack without an encoder tunes on the class-word schedule', () => {
    const s = resolvePersonalize(
      { image: new Uint8Array(1), mime: 'image/png', crop: null, classWord: ' dog ' },
      pack,
      false,
    );
    expect(s).toMatchObject({ ...DEFAULTS.classWord, classWord: 'dog' });
  });
  it('refuses bad request values', () => {
    const base = { image: new Uint8Array(1), mime: 'image/png', crop: null };
    expect(() => resolvePersonalize({ ...base, steps: 101 }, pack, true)).toThrow(
      /^Tuning steps must be a whole number from 1 to 100/,
    );
    expect(() => resolvePersonalize({ ...base, learningRate: 0 }, pack, true)).toThrow(/learning rate must be above 0/);
    expect(() => resolvePersonalize({ ...base, learningRate: Number.NaN }, pack, true)).toThrow(/learning rate/);
    expect(() => resolvePersonalize({ ...base, checkpointing: 'yes' as never }, pack, true)).toThrow(/on or off/);
  });
});
