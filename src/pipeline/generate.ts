// generate(): prompt (+ concept) → images. Classifier-free guidance with a negative prompt,
// the concept's v* spliced into the prompt, its LoRA and the dual path (Eq. 3) with the
// user's blend α, any of the three samplers, seeded noise, progressive previews.
import type { Tensor } from '../engine/tensor.ts';
import { concat } from '../kernels/concat/concat.ts';
import type { LoraPair, LoraSet } from '../models/lora.ts';
import { unet } from '../models/unet/unet.ts';
import { vaeDecode } from '../models/vae/vae.ts';
import type { ConceptData, GenerateSettings, ImageResult } from '../worker/api.ts';
import { latentPreview, pixelsToRgba } from './latent-preview.ts';
import type { PackRuntime } from './pack-runtime.ts';
import { encodePrompt, tokenizeWithPlaceholder } from './prompt.ts';
import { randomNormals } from './random.ts';
import { createScheduler } from './schedulers/index.ts';

export interface GenerateOptions extends GenerateSettings {
  prompt: string;
  negativePrompt: string;
  seed: number;
  concept: ConceptData | null;
  /** Previews every this many steps (0: none). */
  previewEvery?: number;
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
    throw new Error(`this concept was made with pack "${c.packId}" (${c.packHash.slice(0, 12)}…), not the loaded pack "${rt.manifest.name}"`);
  }
  if (c.embedding.length !== rt.tokenDim) throw new Error(`concept embedding has ${c.embedding.length} values, the pack needs ${rt.tokenDim}`);
}

/** The UNet with the concept applied, on the engine, for a [uncond, cond] batch. */
function engineDenoiser(rt: PackRuntime, o: GenerateOptions) {
  const { engine, ops } = rt;
  const c = o.concept;
  const placeholder = c?.placeholder ?? null;
  const slotId = c?.hardTokenId ?? 0;
  const keep = <T extends Tensor>(t: T) => engine.keep(t);
  const state = engine.noGrad(() =>
    engine.scope(() => {
      const tokens = tokenizeWithPlaceholder(rt, o.prompt, placeholder, slotId);
      const neg = tokenizeWithPlaceholder(rt, o.negativePrompt, null, 0);
      const vStar = c ? engine.tensor(c.embedding, [rt.tokenDim]) : null;
      const uncond = encodePrompt(rt, neg, null);
      const cond = encodePrompt(rt, tokens, vStar);
      // C_h: the same prompt with the hard token v_h in the slot.
      const hard = c ? encodePrompt(rt, tokens, null) : cond;
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const l of c?.lora ?? []) {
        layers.set(l.module, { A: keep(engine.tensor(l.A, l.aShape)), B: keep(engine.tensor(l.B, l.bShape)) });
      }
      return {
        context: keep(concat([uncond, cond], 0)),
        hardContext: keep(concat([uncond, hard], 0)),
        layers,
      };
    }),
  );
  const lora: LoraSet<Tensor> | null = c ? { layers: state.layers, scale: c.alpha / c.rank } : null;
  return {
    /** x: (1, L, h, w) → [ε_uncond, ε_cond] */
    async predict(x: Float32Array, shape: number[], t: number): Promise<[Float32Array, Float32Array]> {
      const out = await engine.noGrad(() =>
        engine.scopeAsync(async () => {
          const xt = engine.tensor(x, shape);
          const eps = unet(ops, rt.unet.params, rt.unet.config, {
            sample: concat([xt, xt], 0),
            timesteps: [t, t],
            cond: { context: state.context, lora, dual: c ? { hardContext: state.hardContext, alpha: o.blend } : null },
          });
          return eps.read();
        }),
      );
      const n = x.length;
      return [out.subarray(0, n), out.subarray(n, 2 * n)];
    },
    dispose() {
      state.context.dispose();
      state.hardContext.dispose();
      for (const p of state.layers.values()) {
        p.A.dispose();
        p.B.dispose();
      }
    },
  };
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new DOMException('generation cancelled', 'AbortError');
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
  const { engine, ops } = rt;
  const L = rt.unet.config.in_channels;
  const h = rt.manifest.latentSize;
  const w = h;
  const shape = [1, L, h, w];
  const sf = rt.manifest.vaeScalingFactor;
  const denoiser = engineDenoiser(rt, o);
  const images: GeneratedImage[] = [];
  try {
    for (let i = 0; i < Math.max(1, o.batch); i++) {
      const seed = o.seed + i;
      const scheduler = createScheduler(o.sampler, rt.manifest.scheduler);
      scheduler.setTimesteps(o.steps);
      // 1. x_T ~ N(0, σ²_init·I) from the documented Philox stream: the same seed gives the
      //    same image in Node and in the browser.
      let x: Float32Array = o.initialLatent
        ? Float32Array.from(o.initialLatent)
        : randomNormals(seed, L * h * w).map((v) => v * scheduler.initNoiseSigma);
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
      // 4. decode z/scaling_factor with the VAE
      const pixels = await engine.noGrad(() =>
        engine.scopeAsync(async () => {
          const z = engine.tensor(x.map((v) => v / sf), shape);
          return vaeDecode(ops, rt.vae.params, rt.vae.config, z).read();
        }),
      );
      const size = rt.manifest.imageSize;
      images.push({ width: size, height: size, rgba: pixelsToRgba(pixels, size, size), seed, latent: x });
    }
    return images;
  } finally {
    denoiser.dispose();
  }
}
