// generate(): prompt (+ concept) → images. Classifier-free guidance with a negative prompt,
// the concept's v* spliced into the prompt, its LoRA and the dual path (Eq. 3) with the
// user's blend α, any of the three samplers, seeded noise, progressive previews.
import type { Tensor } from '../engine/tensor.ts';
import { concat } from '../kernels/concat/concat.ts';
import type { EngineOps } from '../models/engine-ops.ts';
import type { LoraPair, LoraSet } from '../models/lora.ts';
import { unet } from '../models/unet/unet.ts';
import { vaeDecode } from '../models/vae/vae.ts';
import type { ConceptData, GenerateSettings, ImageResult, RngName } from '../domain/types.ts';
import type { Denoiser } from './denoiser.ts';
import { latentPreview, pixelsToRgba } from './latent-preview.ts';
import { onnxDenoiser } from './onnx-denoiser.ts';
import type { PackRuntime } from './pack-runtime.ts';
import { encodePrompt, tokenizeWithPlaceholder } from './prompt.ts';
import { randomNormals } from './random.ts';
import { releaseFreeBuffers } from './release-memory.ts';
import { torchRandn } from './torch-random.ts';
import { createScheduler } from './schedulers/index.ts';
import { conceptFieldProblems } from '../storage/concept-limits.ts';

export interface GenerateOptions extends GenerateSettings {
  prompt: string;
  negativePrompt: string;
  seed: number;
  concept: ConceptData | null;
  /** Previews every this many steps (0: none). */
  previewEvery?: number;
  /** Which runtime runs the UNet (default: the engine). */
  runtime?: 'engine' | 'onnx';
  /**
   * How x_T is drawn from the seed: 'philox' (default, Likeness' own stream) or 'torch', the
   * values `torch.randn((1, 4, h, w), generator=torch.Generator('cpu').manual_seed(seed))`
   * gives, so diffusers with that generator starts from the same x_T. The samplers here add
   * no noise after x_T (DDIM η = 0, Euler without churn, DPM-Solver++ 2M), so x_T is all.
   */
  rng?: RngName;
  /** Start from this x_T (× initNoiseSigma is NOT applied) instead of seeded noise (tests, img2img). */
  initialLatent?: Float32Array;
}

export interface GeneratedImage extends ImageResult {
  /** The final latent z₀ (before the VAE), for tests and re-decoding. */
  latent: Float32Array;
}

export interface GenerateEvent {
  image: number;
  step: number;
  steps: number;
  preview: ImageResult | null;
}

function checkConcept(rt: PackRuntime, c: ConceptData): void {
  if (c.packHash !== rt.hash) {
    throw new Error(
      `this concept was made with pack "${c.packId}" (${c.packHash.slice(0, 12)}…), not the loaded pack "${rt.manifest.name}"`,
    );
  }
  const k = c.hardTokenIds?.length ?? 1;
  if (c.embedding.length !== k * rt.tokenDim) {
    throw new Error(
      `concept embedding has ${c.embedding.length} values, the pack needs ${k} × ${rt.tokenDim} for ${k} token vector${k > 1 ? 's' : ''}`,
    );
  }
  // The field rules of concept import (concept-limits.ts), for concepts that did not come
  // from a file. The known-word rule is applied where a concept is made or imported: an
  // imported LoRA without an embedding may be named by a word the model knows.
  const problems = conceptFieldProblems(c, { vocabSize: rt.tokenizer.vocabSize });
  if (problems.length) throw new Error(`this concept cannot be used: ${problems.join('; ')}`);
}

interface Conditioning {
  context: Tensor; // (2, 77, C): [uncond, cond]
  hardContext: Tensor; // (2, 77, C): [uncond, C_h]
  layers: Map<string, LoraPair<Tensor>>;
}

/** Encode the prompts once: C with v* spliced, C_h with the hard token, and the negative prompt. */
function encodeConditioning(rt: PackRuntime, o: GenerateOptions): Conditioning {
  const { engine } = rt;
  const c = o.concept;
  return engine.noGrad(() =>
    engine.scope(() => {
      const k = c?.hardTokenIds?.length ?? 1;
      const tokens = tokenizeWithPlaceholder(
        rt,
        o.prompt,
        c?.placeholder ?? null,
        c?.hardTokenIds ?? c?.hardTokenId ?? 0,
      );
      const neg = tokenizeWithPlaceholder(rt, o.negativePrompt, null, 0);
      const vStar = c ? engine.tensor(c.embedding, k > 1 ? [k, rt.tokenDim] : [rt.tokenDim]) : null;
      const uncond = encodePrompt(rt, neg, null);
      const cond = encodePrompt(rt, tokens, vStar);
      const hard = c ? encodePrompt(rt, tokens, null) : cond;
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const l of c?.lora ?? []) {
        layers.set(l.module, {
          A: engine.keep(engine.tensor(l.A, l.aShape)),
          B: engine.keep(engine.tensor(l.B, l.bShape)),
        });
      }
      return {
        context: engine.keep(concat([uncond, cond], 0)),
        hardContext: engine.keep(concat([uncond, hard], 0)),
        layers,
      };
    }),
  );
}

function disposeConditioning(s: Conditioning): void {
  s.context.dispose();
  s.hardContext.dispose();
  for (const p of s.layers.values()) {
    p.A.dispose();
    p.B.dispose();
  }
}

/** The UNet with the concept applied, on the engine, for a [uncond, cond] batch. */
function engineDenoiser(rt: PackRuntime, o: GenerateOptions, state: Conditioning): Denoiser {
  const { engine } = rt;
  const c = o.concept;
  const lora: LoraSet<Tensor> | null = c ? { layers: state.layers, scale: c.alpha / c.rank } : null;
  let ops = rt.ops;
  return {
    backend: `engine (${engine.info.name})`,
    async predict(x, shape, t) {
      let out = await run(x, shape, t);
      // fp16 activations overflow beyond ±65504 where fp32 does not: this step is redone with
      // fp32 activations, and so are the steps after it.
      if (ops !== rt.opsF32 && !out.every(Number.isFinite)) {
        ops = rt.opsF32;
        out = await run(x, shape, t);
      }
      const n = x.length;
      return [out.subarray(0, n), out.subarray(n, 2 * n)];
    },
    dispose() {},
  };

  function run(x: Float32Array, shape: number[], t: number): Promise<Float32Array> {
    return engine.noGrad(() =>
      engine.scopeAsync(async () => {
        const xt = engine.tensor(x, shape);
        const eps = unet(ops, rt.unet.params, rt.unet.config, {
          sample: concat([xt, xt], 0),
          timesteps: [t, t],
          cond: { context: state.context, lora, dual: c ? { hardContext: state.hardContext, alpha: o.blend } : null },
          // without gradients: each block frees its intermediates when it returns
          checkpointing: true,
        });
        return eps.read();
      }),
    );
  }
}

async function makeDenoiser(rt: PackRuntime, o: GenerateOptions, state: Conditioning): Promise<Denoiser> {
  if ((o.runtime ?? 'engine') === 'engine') return engineDenoiser(rt, o, state);
  const n = 77 * rt.tokenDim;
  const ctx = await state.context.read();
  const hard = await state.hardContext.read();
  return onnxDenoiser(rt, { uncond: ctx.slice(0, n), cond: ctx.slice(n), hard: hard.slice(n) }, o.concept, o.blend);
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted)
    throw signal.reason instanceof Error ? signal.reason : new DOMException('generation cancelled', 'AbortError');
}

export async function generate(
  rt: PackRuntime,
  o: GenerateOptions,
  onEvent: (e: GenerateEvent) => void = () => {},
  signal?: AbortSignal,
): Promise<GeneratedImage[]> {
  if (o.concept) checkConcept(rt, o.concept);
  if (!(o.steps >= 1 && o.steps <= 1000)) throw new Error(`steps must be in [1, 1000], got ${o.steps}`);
  if (!(o.blend >= 0 && o.blend <= 1)) throw new Error(`blend α must be in [0, 1], got ${o.blend}`);
  if (o.rng !== undefined && o.rng !== 'philox' && o.rng !== 'torch')
    throw new Error(`rng must be "philox" or "torch", got ${String(o.rng)}`);
  const { engine } = rt;
  const L = rt.unet.config.in_channels;
  const h = rt.manifest.latentSize;
  const w = h;
  const shape = [1, L, h, w];
  const sf = rt.manifest.vaeScalingFactor;
  const state = encodeConditioning(rt, o);
  let denoiser: Denoiser | null = null;
  const images: GeneratedImage[] = [];
  try {
    denoiser = await makeDenoiser(rt, o, state);
    for (let i = 0; i < Math.max(1, o.batch); i++) {
      const seed = o.seed + i;
      const scheduler = createScheduler(o.sampler, rt.manifest.scheduler);
      scheduler.setTimesteps(o.steps);
      // 1. x_T ~ N(0, σ²_init·I) from the documented Philox stream (or torch's): the same seed
      //    gives the same image in Node and in the browser.
      const draw = (o.rng ?? 'philox') === 'torch' ? torchRandn : randomNormals;
      let x: Float32Array = o.initialLatent
        ? Float32Array.from(o.initialLatent)
        : draw(seed, L * h * w).map((v) => v * scheduler.initNoiseSigma);
      const timesteps = scheduler.timesteps;
      for (let s = 0; s < timesteps.length; s++) {
        throwIfAborted(signal);
        const t = timesteps[s];
        // 2. ε for the unconditional and the conditional prompt, then guidance
        const [eu, ec] = await denoiser.predict(scheduler.scaleModelInput(x, t), shape, t);
        const guided = new Float32Array(eu.length);
        for (let k = 0; k < eu.length; k++) guided[k] = eu[k] + o.guidance * (ec[k] - eu[k]);
        // 3. the sampler's update x_t → x_{t−1}
        const { prevSample, predOriginalSample } = scheduler.step(guided, t, x);
        x = prevSample;
        const every = o.previewEvery ?? 1;
        const preview =
          every > 0 && (s + 1) % every === 0
            ? { width: w, height: h, rgba: latentPreview(predOriginalSample, h, w), seed }
            : null;
        onEvent({ image: i, step: s + 1, steps: timesteps.length, preview });
      }
      // 4. decode z/scaling_factor with the VAE (again with fp32 activations if fp16 ones overflowed)
      const latent = x;
      const decode = (activations: EngineOps) =>
        engine.noGrad(() =>
          engine.scopeAsync(async () =>
            vaeDecode(
              activations,
              rt.vae.params,
              rt.vae.config,
              engine.tensor(
                latent.map((v) => v / sf),
                shape,
              ),
            ).read(),
          ),
        );
      let pixels = await decode(rt.ops);
      if (rt.ops !== rt.opsF32 && !pixels.every(Number.isFinite)) pixels = await decode(rt.opsF32);
      const size = rt.manifest.imageSize;
      images.push({ width: size, height: size, rgba: pixelsToRgba(pixels, size, size), seed, latent: x });
    }
    await releaseFreeBuffers(engine);
    return images;
  } finally {
    denoiser?.dispose();
    disposeConditioning(state);
  }
}
