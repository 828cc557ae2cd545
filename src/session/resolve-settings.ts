// Every default of a request, resolved once, in one order: the request, then the concept (its
// stored generation blend), then the pack manifest's `defaults`, then DEFAULTS
// (domain/defaults.ts) for what a manifest does not carry. Each value the request gives is
// checked here, once; a manifest's were checked when it was parsed (packs/manifest.ts), a
// concept's when it was made or imported. The CLI and the app both come through here, so the
// same request gets the same settings in both.
import { DEFAULTS } from '../domain/defaults.ts';
import { BLEND, MANIFEST_LIMITS } from '../domain/limits.ts';
import { SAMPLERS, type SamplerName } from '../domain/samplers.ts';
import type { ConceptData, RngName } from '../domain/types.ts';
import type { GenerationDefaults } from '../packs/manifest.ts';
import { BadRequest } from './bad-request.ts';
import type { SessionGenerateRequest, SessionPersonalizeRequest } from './requests.ts';
import { inRange, intIn, numIn, oneOf } from './validate.ts';

/** Bounds on requests beyond what a manifest may propose (domain/limits.ts has those). */
const SEED_MAX = 0xffffffff;
const TUNING_STEPS_MAX = 100;
const GUIDANCE_MAX = 100;
const TUNING_BATCH_MAX = 16;

export interface ResolvedGenerate {
  prompt: string;
  negativePrompt: string;
  steps: number;
  guidance: number;
  sampler: SamplerName;
  blend: number;
  batch: number;
  seed: number;
  concept: ConceptData | null;
  runtime: 'onnx' | 'engine';
  rng: RngName;
}

/** The request's value, checked, when it has one; else the fallback (already checked where it came from). */
function given<T>(v: unknown, check: (v: unknown) => T, fallback: T): T {
  return v === undefined ? fallback : check(v);
}

const text = (what: string) => (v: unknown) => {
  if (typeof v !== 'string') throw new BadRequest(`${what} must be text.`);
  return v;
};

export function resolveGenerate(r: SessionGenerateRequest, pack: GenerationDefaults): ResolvedGenerate {
  if (typeof r.prompt !== 'string') throw new BadRequest('The prompt is missing.');
  const g = DEFAULTS.generate;
  const blend = r.concept?.blend ?? pack.blend;
  return {
    prompt: r.prompt,
    negativePrompt: given(r.negativePrompt, text('The negative prompt'), pack.negativePrompt),
    steps: given(r.steps, (v) => inRange(v, MANIFEST_LIMITS.steps, 'Steps'), pack.steps),
    guidance: given(r.guidance, (v) => numIn(v, 0, GUIDANCE_MAX, 'Guidance'), pack.guidanceScale),
    sampler: given(r.sampler, (v) => oneOf(v, SAMPLERS, 'The sampler'), pack.sampler),
    // A concept's blend was checked when it was made or imported (concept-limits.ts).
    blend: given(r.blend, (v) => inRange(v, BLEND, 'Blend α'), blend),
    batch: given(r.batch, (v) => inRange(v, MANIFEST_LIMITS.batchSize, 'Batch'), pack.batchSize),
    seed: given(r.seed, (v) => intIn(v, 0, SEED_MAX, 'The seed'), g.seed),
    concept: r.concept ?? null,
    runtime: given(r.runtime, (v) => oneOf(v, ['engine', 'onnx'] as const, 'The runtime'), g.runtime),
    rng: given(r.rng, (v) => oneOf(v, ['philox', 'torch'] as const, 'The random generator'), g.rng),
  };
}

export interface ResolvedPersonalize {
  placeholder: string;
  steps: number;
  learningRate: number;
  /** α of Eq. 3 while tuning. */
  tuningBlend: number;
  lambdaWeights: number;
  lambdaEmbedding: number;
  nearestWords: number;
  seed: number;
  batch: number;
  /** Trimmed; '' when none was given. */
  classWord: string;
  checkpointing: boolean | undefined;
}

/**
 * A pack with a tuning encoder tunes from its prediction (the paper's App. B schedule, the
 * manifest's steps and rate); one without starts from a class word and tunes longer
 * (DEFAULTS.classWord), whatever its manifest proposes for the encoder.
 */
export function resolvePersonalize(
  r: SessionPersonalizeRequest,
  pack: GenerationDefaults,
  hasEncoder: boolean,
): ResolvedPersonalize {
  const p = DEFAULTS.personalize;
  const w = DEFAULTS.classWord;
  const flag = (what: string) => (v: unknown) => {
    if (typeof v !== 'boolean') throw new BadRequest(`${what} is on or off (true or false).`);
    return v;
  };
  return {
    placeholder: given(r.placeholder, text('The placeholder word'), pack.placeholder).trim(),
    steps: given(
      r.steps,
      (v) => intIn(v, 1, TUNING_STEPS_MAX, 'Tuning steps'),
      hasEncoder ? pack.tuningSteps : w.steps,
    ),
    learningRate: given(
      r.learningRate,
      (v) => inRange(v, MANIFEST_LIMITS.tuningLearningRate, 'The learning rate'),
      hasEncoder ? pack.tuningLearningRate : w.learningRate,
    ),
    tuningBlend: p.tuningBlend,
    lambdaWeights: hasEncoder ? p.lambdaWeights : w.lambdaWeights,
    lambdaEmbedding: hasEncoder ? p.lambdaEmbedding : w.lambdaEmbedding,
    nearestWords: pack.nearestWords,
    seed: given(r.seed, (v) => intIn(v, 0, SEED_MAX, 'The tuning seed'), p.seed),
    batch: given(r.batch, (v) => intIn(v, 1, TUNING_BATCH_MAX, 'The tuning batch'), p.batch),
    classWord: given(r.classWord, text('The class word'), '').trim(),
    checkpointing: given<boolean | undefined>(r.checkpointing, flag('Checkpointing'), undefined),
  };
}
