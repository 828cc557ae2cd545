// The `defaults` block of a pack manifest, taken from the one table of defaults
// (src/domain/defaults.ts) so that a pack `likeness pack` writes starts from the same values
// the app and the CLI fall back to. The manifest's field names are older than the table's
// (guidanceScale, batchSize, tuningSteps…); this is the one place that maps between them.
import { DEFAULTS } from '../domain/defaults.ts';
import type { GenerationDefaults } from './manifest.ts';

/** The manifest `defaults` block from DEFAULTS, with `overrides` (a pack's own choices) on top. */
export function packDefaults(overrides: Partial<GenerationDefaults> = {}): GenerationDefaults {
  const g = DEFAULTS.generate;
  const p = DEFAULTS.personalize;
  return {
    steps: g.steps,
    guidanceScale: g.guidance,
    sampler: g.sampler,
    blend: g.generateBlend,
    negativePrompt: g.negativePrompt,
    batchSize: g.batch,
    placeholder: p.placeholder,
    tuningSteps: p.steps,
    tuningLearningRate: p.learningRate,
    nearestWords: p.nearestWords,
    ...overrides,
  };
}
