// Every default Likeness uses, in one table, each with where it comes from. A value a request
// leaves out is resolved once, in this order: the request, then the concept (its stored
// generation blend), then the pack manifest's `defaults`, then this table. Packs written by
// `likeness pack` copy the generation and tuning rows of this table into their manifests.
//
// Two different α's are both called "blend" in the paper's Eq. 3 (the dual-path mix of the
// personalized and the frozen UNet): `tuningBlend` is α while tuning, `generateBlend` is α
// when generating with a concept. They have the same value by default but are separate knobs.
import type { SamplerName } from './samplers.ts';

export const DEFAULTS = {
  generate: {
    steps: 25,
    guidance: 7.5,
    sampler: 'dpmpp-2m' as SamplerName,
    generateBlend: 0.25,
    negativePrompt: '',
    batch: 1,
    seed: 1,
    runtime: 'engine' as 'engine' | 'onnx',
    rng: 'philox' as 'philox' | 'torch',
  },
  personalize: {
    placeholder: 'S*',
    steps: 12,
    learningRate: 2e-3,
    tuningBlend: 0.25,
    lambdaWeights: 1e-2,
    lambdaEmbedding: 1e-2,
    nearestWords: 5,
    batch: 1,
    seed: 0,
  },
  /** Packs without a tuning encoder start v* from a class word and tune longer. */
  classWord: {
    steps: 60,
    learningRate: 2e-3,
    lambdaWeights: 1e-2,
    lambdaEmbedding: 1e-2,
  },
} as const;

type Sources<T> = { readonly [K in keyof T]: { readonly [F in keyof T[K]]: string } };

/** Why each default has its value; docs/pipeline.md and `likeness --help` quote these. */
export const DEFAULT_SOURCES: Sources<typeof DEFAULTS> = {
  generate: {
    steps:
      'Likeness: half of diffusers StableDiffusionPipeline’s 50, enough for DPM-Solver++ 2M (Lu et al. 2022 report 15–25)',
    guidance: 'diffusers StableDiffusionPipeline guidance_scale default 7.5',
    sampler: 'Likeness: DPM-Solver++ 2M, the fastest of the three to converge (Lu et al. 2022)',
    generateBlend: 'paper App. B: α = 0.25 in Eq. 3, used when generating as when tuning',
    negativePrompt: 'diffusers StableDiffusionPipeline negative_prompt default None (empty)',
    batch: 'diffusers num_images_per_prompt default 1',
    seed: 'Likeness: a fixed seed, so the same command gives the same image',
    runtime: 'Likeness: the engine measured faster than onnxruntime-web’s WebGPU EP (npm run bench pipeline)',
    rng: 'Likeness: its own counter-based stream (Philox); torch matches diffusers with a CPU generator',
  },
  personalize: {
    placeholder: 'paper §3: the placeholder word S*',
    steps: 'paper App. B: at most 12 tuning steps with the encoder',
    learningRate: 'paper App. B: tuning learning rate 2e-3',
    tuningBlend: 'paper App. B: α = 0.25 in Eq. 3 while tuning',
    lambdaWeights: 'Likeness: the paper gives the L2 terms (§3.4) but not their weights; 1e-2 (LoRA-PTI uses 1e-3)',
    lambdaEmbedding: 'Likeness: as λ_w, 1e-2; the paper gives the term (§3.4), not its weight',
    nearestWords: 'Likeness: five nearest vocabulary words are shown for v*',
    batch: 'Likeness: one noised view per step',
    seed: 'Likeness: a fixed seed, so tuning is reproducible',
  },
  classWord: {
    steps: 'Likeness: 60 × 2e-3 ≈ LoRA-PTI’s UNet phase (1000 × 1e-4) in Adam travel (docs/pipeline.md)',
    learningRate: 'paper App. B tuning rate, between LoRA-PTI’s 1e-4/5e-4 and Textual Inversion’s 5e-3',
    lambdaWeights: 'Likeness: as with the encoder, 1e-2; with B₀ = 0 an L2 on the LoRA offsets (paper §3.3)',
    lambdaEmbedding: 'Likeness: 1e-2; with v*₀ the class word it is E4T’s pull toward the domain word (paper §2.2)',
  },
};
