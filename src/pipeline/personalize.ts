// personalize(): one photo → a concept {v*, A_i, B_i} (paper §3.4, App. B).
//   1. the tuning encoder predicts v* and LoRA weights from CLIP-vision and UNet-encoder
//      features (or, for packs without an encoder: v* = a class word, B = 0, and the
//      longer encoder-free schedule CLASS_WORD_SCHEDULE);
//   2. N(v*) and the hard token v_h by cosine similarity over the vocabulary;
//   3. ≤ 12 Adam steps on the diffusion loss (Eq. 1) of the photo through the dual-path
//      UNet (Eq. 3, α = 0.25), plus λ_w·Σ‖θ − θ₀‖² + λ_e·‖v* − v*₀‖².
import { Adam } from '../engine/adam.ts';
import type { Tensor } from '../engine/tensor.ts';
import { add, mul, scale } from '../kernels/binary/binary.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import type { ClipTextConfig } from '../models/clip/clip-config.ts';
import type { LoraPair } from '../models/lora.ts';
import type { Params } from '../models/params.ts';
import type { TensorOps } from '../models/tensor-ops.ts';
import type { ResolvedUNetConfig } from '../models/unet/unet-config.ts';
import { tuningEncoder } from '../models/tuning-encoder/tuning-encoder.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { unet, unetEncoderFeatures } from '../models/unet/unet.ts';
import { vaeEncode } from '../models/vae/vae.ts';
import { DEFAULTS } from '../domain/defaults.ts';
import type { ConceptData, ConceptStart } from '../domain/types.ts';
import { flipHorizontal, squareViews } from './augment.ts';
import { cropRect } from '../image/transform.ts';
import type { RgbaImage } from '../image/types.ts';
import { toClipPixels, toVaePixels } from '../image/pixels.ts';
import { nearestTokens } from './nearest-tokens.ts';
import type { PackRuntime } from './pack-runtime.ts';
import { encodePrompt, encodePromptWith, tokenizeWithPlaceholder, type PromptTokens } from './prompt.ts';
import { PhiloxRandom } from './random.ts';
import { releaseFreeBuffers } from './release-memory.ts';
import { createScheduler } from './schedulers/index.ts';
import { diffusionTarget } from './schedulers/prediction.ts';
import { placeholderProblem } from '../storage/concept-limits.ts';
import { LikenessError } from '../domain/errors.ts';

/** Textual Inversion's prompt templates: the concept seen in a few phrasings. */
export const TUNING_TEMPLATES = [
  'a photo of a {}',
  'a rendering of a {}',
  'a cropped photo of the {}',
  'a close-up photo of a {}',
  'a bright photo of the {}',
  'a good photo of a {}',
];

export interface PersonalizeOptions {
  placeholder: string;
  /** Tuning steps (paper: ≤ 12 with an encoder). */
  steps: number;
  learningRate: number;
  /** α of Eq. 3 during tuning (paper: 0.25). */
  blend: number;
  /** λ_w of Σ‖θ − θ₀‖² over the LoRA weights, λ_e of ‖v* − v*₀‖². */
  lambdaWeights: number;
  lambdaEmbedding: number;
  seed: number;
  /** How many nearest words to report. */
  nearestK: number;
  /** Start word for packs without a tuning encoder (required then). */
  classWord?: string;
  /** Noised views per step (each with its own t and ε; default 1). */
  batch?: number;
  /** Recompute each UNet block in backward instead of keeping its activations (default: from 256 px up). */
  checkpointing?: boolean;
}

/** The tuning defaults of src/domain/defaults.ts (DEFAULTS.personalize), in this function's option names. */
export const DEFAULT_PERSONALIZE: Omit<PersonalizeOptions, 'seed'> = {
  placeholder: DEFAULTS.personalize.placeholder,
  steps: DEFAULTS.personalize.steps,
  learningRate: DEFAULTS.personalize.learningRate,
  blend: DEFAULTS.personalize.tuningBlend,
  lambdaWeights: DEFAULTS.personalize.lambdaWeights,
  lambdaEmbedding: DEFAULTS.personalize.lambdaEmbedding,
  nearestK: DEFAULTS.personalize.nearestWords,
};

/**
 * The encoder-free schedule (DEFAULTS.classWord): a pack without a tuning encoder starts from
 * a class word's embedding and B = 0, far from the concept, so it tunes longer. Where each
 * value comes from is in DEFAULT_SOURCES.classWord and docs/pipeline.md, "Starting without an
 * encoder".
 */
export const CLASS_WORD_SCHEDULE = DEFAULTS.classWord;

/** Steps used when the pack has no tuning encoder (everything starts from scratch). */
export const STEPS_WITHOUT_ENCODER = CLASS_WORD_SCHEDULE.steps;

/** The tuning defaults for a pack with or without a tuning encoder. */
export function tuningDefaults(
  hasEncoder: boolean,
  packLearningRate: number = DEFAULT_PERSONALIZE.learningRate,
): { steps: number; learningRate: number; lambdaWeights: number; lambdaEmbedding: number } {
  return hasEncoder
    ? {
        steps: DEFAULTS.personalize.steps,
        learningRate: packLearningRate,
        lambdaWeights: DEFAULTS.personalize.lambdaWeights,
        lambdaEmbedding: DEFAULTS.personalize.lambdaEmbedding,
      }
    : { ...CLASS_WORD_SCHEDULE };
}

/**
 * The class word's single token, or an error that says what to type instead. One token, as
 * diffusers' textual-inversion script requires of its initializer token: a word the
 * tokenizer splits has no single embedding to start from.
 */
export function classWordToken(tokenizer: { encode(text: string): number[] }, word: string | undefined): number {
  const w = (word ?? '').trim();
  if (!w) {
    throw new Error(
      'this pack has no tuning encoder, so personalization starts from a class word: say in one word what the photo shows (e.g. dog, mug, statue)',
    );
  }
  if (/\s/.test(w)) throw new Error(`the class word must be one word, not "${w}" (e.g. "dog")`);
  const ids = tokenizer.encode(w);
  if (ids.length === 0) throw new Error(`the class word "${w}" has no tokens; use an ordinary word such as "dog"`);
  if (ids.length > 1) {
    throw new Error(
      `the class word "${w}" is ${ids.length} tokens to this model's tokenizer, and a start needs one; use a more common word for the same thing (e.g. "dog" rather than "dachshund")`,
    );
  }
  return ids[0];
}

export type PersonalizeEvent =
  | { stage: 'encoding' }
  | { stage: 'nearest'; words: string[]; similarities: number[]; fromEncoder: boolean; start: ConceptStart }
  | { stage: 'tuning'; step: number; steps: number; loss: number; diffusionLoss: number }
  | { stage: 'done' };

export class NumericalError extends LikenessError {
  readonly kind = 'numerical';
  constructor(
    message: string,
    /** The encoder's prediction, usable as a concept on its own. */
    readonly fallback: ConceptData,
  ) {
    super(message);
    this.name = 'NumericalError';
  }
}

/** The trainable state θ = {v*, A_i, B_i} as engine parameters. */
export interface ConceptParams {
  /** v*: (C) */
  vStar: Tensor;
  /** A_i: (r, in), B_i: (out, r), by UNet module path. */
  lora: Map<string, LoraPair<Tensor>>;
  scale: number;
}

export interface PreparedImage {
  /** z₀ of each augmented view, × the VAE scaling factor: (views, latent, h, w). Kept; dispose it. */
  latents: Tensor;
  /** CLIP pixels of the photo: (1, 3, S, S). Kept; dispose it. */
  clipPixels: Tensor;
}

/** Square crop → CLIP pixels, and the VAE latents of 4 views (2 zooms × mirror). */
export function prepareImage(rt: PackRuntime, image: RgbaImage): PreparedImage {
  const { engine, ops } = rt;
  const size = rt.manifest.imageSize;
  const square = image.width === image.height ? image : cropRect(image);
  const views = squareViews(square, size).flatMap((v) => [v, flipHorizontal(v)]);
  const vaePixels = new Float32Array(views.length * 3 * size * size);
  views.forEach((v, i) => vaePixels.set(toVaePixels(v.data, v.width, v.height), i * 3 * size * size));
  const S = rt.vision.config.image_size;
  const clip = toClipPixels(square.data, square.width, square.height, S);
  // One view at a time: at 512 px the VAE's activations are 128 MiB per image and channel
  // block, so encoding the four views as one batch would need four times the GPU memory.
  const n = 3 * size * size;
  return engine.noGrad(() =>
    engine.scope(() => {
      const means = views.map((_, i) =>
        engine.scope(
          () =>
            vaeEncode(
              ops,
              rt.vae.params,
              rt.vae.config,
              engine.tensor(vaePixels.subarray(i * n, (i + 1) * n), [1, 3, size, size]),
            ).mean,
        ),
      );
      return {
        latents: engine.keep(scale(means.length === 1 ? means[0] : ops.concat(means, 0), rt.manifest.vaeScalingFactor)),
        clipPixels: engine.keep(engine.tensor(clip, [1, 3, S, S])),
      };
    }),
  );
}

export interface TuningLossInputs<T> {
  theta: { vStar: T; lora: ReadonlyMap<string, LoraPair<T>>; scale: number };
  theta0: { vStar: T; lora: ReadonlyMap<string, LoraPair<T>> };
  /** z_t: (B, L, h, w); one timestep per sample (or one for all). */
  zt: T;
  t: number | readonly number[];
  /** What the UNet should output at z_t, (B, L, h, w): ε, or v for v-prediction models (diffusionTarget). */
  eps: T;
  tokens: PromptTokens;
  /** C_h for the dual path: (1, 77, C) */
  hardContext: T;
  blend: number;
  lambdaWeights: number;
  lambdaEmbedding: number;
  /** Recompute each UNet block in backward (less memory, one more forward). */
  checkpointing?: boolean;
}

/**
 * The tuning objective on any backend (the engine trains with it; the float64 reference
 * backend checks its gradients by finite differences):
 *   L = ‖ε − ε_θ(z_t, t, C(v*))‖²/n  (Eq. 1, mean, through the dual-path UNet of Eq. 3)
 *     + λ_w·Σ_i(‖A_i − A_i⁰‖² + ‖B_i − B_i⁰‖²) + λ_e·‖v* − v*⁰‖²
 */
export function tuningLoss<T>(
  ops: TensorOps<T, { data: Int32Array; shape: readonly number[] }, readonly number[]>,
  text: { params: Params<T>; config: ClipTextConfig },
  unetModel: { params: Params<T>; config: ResolvedUNetConfig },
  x: TuningLossInputs<T>,
): { total: T; diffusion: T } {
  const all = (v: T) => ops.shape(v).map((_, i) => i);
  const sumSquares = (v: T) => {
    const n = ops.shape(v).reduce((a, b) => a * b, 1);
    return ops.scale(ops.mean(ops.mul(v, v), all(v)), n);
  };
  // 1. C from v*, then ε_θ through the dual path with the LoRA offsets; one prompt for the
  //    whole batch of noised views
  const B = ops.shape(x.zt)[0];
  const batched = (v: T) =>
    B === 1
      ? v
      : ops.concat(
          Array.from({ length: B }, () => v),
          0,
        );
  const context = batched(encodePromptWith(ops, text.params, text.config, x.tokens, x.theta.vStar));
  const timesteps = typeof x.t === 'number' ? Array.from({ length: B }, () => x.t as number) : [...x.t];
  const epsHat = unet(ops, unetModel.params, unetModel.config, {
    sample: x.zt,
    timesteps,
    cond: {
      context,
      lora: { layers: x.theta.lora, scale: x.theta.scale },
      dual: { hardContext: batched(x.hardContext), alpha: x.blend },
    },
    checkpointing: x.checkpointing,
  });
  // 2. Eq. 1
  const d = ops.sub(epsHat, x.eps);
  const diffusion = ops.mean(ops.mul(d, d), all(d));
  // 3. the anchors to the encoder's prediction
  let reg = ops.scale(sumSquares(ops.sub(x.theta.vStar, x.theta0.vStar)), x.lambdaEmbedding);
  for (const [m, p] of x.theta.lora) {
    const p0 = x.theta0.lora.get(m)!;
    reg = ops.add(
      reg,
      ops.scale(ops.add(sumSquares(ops.sub(p.A, p0.A)), sumSquares(ops.sub(p.B, p0.B))), x.lambdaWeights),
    );
  }
  return { total: ops.add(diffusion, reg), diffusion };
}

/** The encoder's initial guess θ₀ as CPU data. */
interface InitialGuess {
  vStar: Float32Array;
  lora: { module: string; A: Float32Array; aShape: [number, number]; B: Float32Array; bShape: [number, number] }[];
  fromEncoder: boolean;
  start: ConceptStart;
}

async function predictInitialGuess(rt: PackRuntime, img: PreparedImage, o: PersonalizeOptions): Promise<InitialGuess> {
  const { engine, ops } = rt;
  const u = rt.unet.config;
  const r = rt.manifest.architecture.lora.rank;
  if (!rt.encoder) {
    // No encoder: v* = the class word's token, A small random, B = 0 (LoRA's usual start).
    const id = classWordToken(rt.tokenizer, o.classWord);
    const rng = new PhiloxRandom(o.seed, { stream: 7 });
    const targets = loraTargets(u);
    return {
      vStar: await rt.tokenEmbedding(id),
      lora: targets.map((t) => {
        const bound = 1 / Math.sqrt(t.in);
        const A = rng.uniforms(r * t.in).map((x) => (2 * x - 1) * bound);
        return { module: t.module, A, aShape: [r, t.in], B: new Float32Array(t.out * r), bShape: [t.out, r] };
      }),
      fromEncoder: false,
      start: { kind: 'class-word', word: o.classWord!.trim() },
    };
  }
  const enc = rt.encoder;
  await rt.ensureImageEncoder(); // a runtime opened for generation may have deferred it
  const T = enc.config.unet_timestep;
  return engine.noGrad(() =>
    engine.scopeAsync(async () => {
      // 1. backbones: CLIP-vision spatial tokens; UNet encoder on the clean latent, empty prompt
      const clipTokens = clipVision(ops, rt.vision.params, rt.vision.config, img.clipPixels).lastHiddenState;
      const z0 = ops.slice(img.latents, 0, 0, 1);
      const empty = encodePrompt(rt, tokenizeWithPlaceholder(rt, '', null, 0), null);
      const feats = unetEncoderFeatures(ops, rt.unet.params, u, {
        sample: z0,
        timesteps: [T],
        cond: { context: empty, lora: null, dual: null },
        checkpointing: true,
      });
      // 2. the two heads
      const out = tuningEncoder(ops, enc.params, enc.config, enc.targets, clipTokens, feats);
      const lora = [];
      for (const t of enc.targets) {
        const pair = out.lora.layers.get(t.module)!;
        lora.push({
          module: t.module,
          A: await pair.A.read(),
          aShape: [r, t.in] as [number, number],
          B: await pair.B.read(),
          bShape: [t.out, r] as [number, number],
        });
      }
      return {
        vStar: await out.embedding.read(),
        lora,
        fromEncoder: true,
        start: { kind: 'encoder', trained: enc.config.trained !== false } as ConceptStart,
      };
    }),
  );
}

function guessToConcept(
  rt: PackRuntime,
  g: InitialGuess,
  hardTokenId: number,
  words: string[],
  o: PersonalizeOptions,
  lossCurve: number[],
): ConceptData {
  const { rank, alpha } = rt.manifest.architecture.lora;
  return {
    placeholder: o.placeholder,
    embedding: g.vStar,
    nearestWords: words,
    hardTokenId,
    rank,
    alpha,
    blend: o.blend,
    lora: g.lora,
    lossCurve,
    packId: rt.manifest.name,
    packHash: rt.hash,
    start: g.start,
  };
}

/**
 * Mean diffusion loss (Eq. 1, dual path) of a concept on fixed (t, ε, view, template)
 * samples — the same samples before and after tuning make the two comparable.
 */
export async function conceptDiffusionLoss(
  rt: PackRuntime,
  concept: ConceptData,
  img: PreparedImage,
  samples: readonly { t: number; seed: number; view: number; template: number }[],
): Promise<number> {
  const { engine } = rt;
  const alphas = createScheduler('ddim', rt.manifest.scheduler).alphasCumprod;
  const [, L, h, w] = img.latents.shape;
  return engine.noGrad(() =>
    engine.scopeAsync(async () => {
      const vStar = engine.tensor(concept.embedding, [rt.tokenDim]);
      const lora = new Map(
        concept.lora.map((l) => [l.module, { A: engine.tensor(l.A, l.aShape), B: engine.tensor(l.B, l.bShape) }]),
      );
      let total = 0;
      for (const smp of samples) {
        const tpl = TUNING_TEMPLATES[smp.template % TUNING_TEMPLATES.length].replace('{}', concept.placeholder);
        const tokens = tokenizeWithPlaceholder(rt, tpl, concept.placeholder, concept.hardTokenId);
        const eps = engine.tensor(new PhiloxRandom(smp.seed).normals(L * h * w), [1, L, h, w]);
        const a = alphas[smp.t];
        const zt = add(scale(rt.ops.slice(img.latents, 0, smp.view, 1), Math.sqrt(a)), scale(eps, Math.sqrt(1 - a)));
        const { diffusion } = tuningLoss(rt.ops, rt.text, rt.unet, {
          theta: { vStar, lora, scale: concept.alpha / concept.rank },
          theta0: { vStar, lora },
          zt,
          t: smp.t,
          eps,
          tokens,
          hardContext: encodePrompt(rt, tokens, null),
          blend: concept.blend,
          lambdaWeights: 0,
          lambdaEmbedding: 0,
        });
        total += (await diffusion.read())[0];
      }
      return total / samples.length;
    }),
  );
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted)
    throw signal.reason instanceof Error ? signal.reason : new DOMException('personalization cancelled', 'AbortError');
}

/**
 * Checkpointing when not asked either way: on from 32×32 latents (256 px) up, where the
 * UNet's kept activations outgrow its weights (SD 1.5 at 512 px: many GB without it).
 */
export function checkpointingByDefault(rt: PackRuntime): boolean {
  return rt.manifest.latentSize >= 32;
}

/**
 * One photo → a concept. Cancels between steps when `signal` aborts; a NaN/Inf loss stops
 * tuning with a NumericalError that carries the encoder's prediction.
 */
export async function personalize(
  rt: PackRuntime,
  image: RgbaImage,
  options: PersonalizeOptions,
  onEvent: (e: PersonalizeEvent) => void = () => {},
  signal?: AbortSignal,
): Promise<ConceptData> {
  const o = options;
  const { engine } = rt;
  // The same rules concept import applies (concept-limits.ts), against this pack's vocabulary.
  const phProblem = placeholderProblem(o.placeholder, rt.tokenizer);
  if (phProblem) throw new Error(`the placeholder ${phProblem}`);
  // Refuse a missing or unusable class word before any GPU work.
  if (!rt.encoder) classWordToken(rt.tokenizer, o.classWord);
  onEvent({ stage: 'encoding' });
  const img = prepareImage(rt, image);
  const owned: Tensor[] = [img.latents, img.clipPixels];
  try {
    throwIfAborted(signal);
    // 1. θ₀ from the encoder (or the class word)
    const guess = await predictInitialGuess(rt, img, o);
    // The vision tower is done with: tuning and generating never read it.
    rt.releaseImageEncoder();
    throwIfAborted(signal);

    // 2. N(v*) and v_h
    const v0 = engine.keep(engine.tensor(guess.vStar, [rt.tokenDim]));
    owned.push(v0);
    const near = await nearestTokens(rt, v0, Math.max(1, o.nearestK));
    const hardTokenId = near.ids[0];
    onEvent({
      stage: 'nearest',
      words: near.words,
      similarities: near.similarities,
      fromEncoder: guess.fromEncoder,
      start: guess.start,
    });
    const initial = guessToConcept(rt, guess, hardTokenId, near.words, o, []);

    // 3. θ as parameters, θ₀ as constants
    const vStar = engine.parameter(guess.vStar, [rt.tokenDim], 'v*');
    const lora = new Map<string, LoraPair<Tensor>>();
    const lora0 = new Map<string, LoraPair<Tensor>>();
    for (const l of guess.lora) {
      lora.set(l.module, {
        A: engine.parameter(l.A, l.aShape, `${l.module}.A`),
        B: engine.parameter(l.B, l.bShape, `${l.module}.B`),
      });
      lora0.set(l.module, {
        A: engine.keep(engine.tensor(l.A, l.aShape)),
        B: engine.keep(engine.tensor(l.B, l.bShape)),
      });
    }
    const params = [vStar, ...[...lora.values()].flatMap((p) => [p.A, p.B])];
    owned.push(...params, ...[...lora0.values()].flatMap((p) => [p.A, p.B]));
    const theta: ConceptParams = {
      vStar,
      lora,
      scale: rt.manifest.architecture.lora.alpha / rt.manifest.architecture.lora.rank,
    };
    const opt = new Adam(engine, params, { lr: o.learningRate });

    // 4. the prompts: C_h (hard token in the slot) is fixed, C is re-encoded from v* each step
    const prompts = TUNING_TEMPLATES.map((tpl) => {
      const tokens = tokenizeWithPlaceholder(rt, tpl.replace('{}', o.placeholder), o.placeholder, hardTokenId);
      const hard = engine.keep(engine.noGrad(() => engine.scope(() => encodePrompt(rt, tokens, null))));
      owned.push(hard);
      return { tokens, hard };
    });

    // 5. the tuning loop
    const rng = new PhiloxRandom(o.seed, { stream: 1 });
    const { alphasCumprod: alphas, config: schedule } = createScheduler('ddim', rt.manifest.scheduler);
    const predictionType = schedule.predictionType;
    const [views, L, h, w] = img.latents.shape;
    const latentSize = L * h * w;
    const lossCurve: number[] = [];
    try {
      for (let step = 0; step < o.steps; step++) {
        throwIfAborted(signal);
        // 5a. random t, ε and view per sample, one template per step (seeded: the same
        //     seed gives the same run)
        const B = Math.max(1, Math.floor(o.batch ?? 1));
        const ts: number[] = [];
        const picks: number[] = [];
        for (let b = 0; b < B; b++) {
          const [ut, uv] = rng.uniforms(2);
          ts.push(Math.min(alphas.length - 1, Math.floor(ut * alphas.length)));
          picks.push(Math.min(views - 1, Math.floor(uv * views)));
        }
        const prompt = prompts[Math.min(prompts.length - 1, Math.floor(rng.uniforms(1)[0] * prompts.length))];
        const noise = rng.normals(B * latentSize);
        const { total, diffusion } = await engine.scopeAsync(async () => {
          // 5b. z_t = √ᾱ_t·z₀ + √(1−ᾱ_t)·ε, per sample
          const eps = engine.tensor(noise, [B, L, h, w]);
          const sqrtA = new Float32Array(B * latentSize);
          const sqrt1mA = new Float32Array(B * latentSize);
          ts.forEach((t, b) => {
            sqrtA.fill(Math.sqrt(alphas[t]), b * latentSize, (b + 1) * latentSize);
            sqrt1mA.fill(Math.sqrt(1 - alphas[t]), b * latentSize, (b + 1) * latentSize);
          });
          const z0 =
            B === 1
              ? rt.ops.slice(img.latents, 0, picks[0], 1)
              : rt.ops.concat(
                  picks.map((v) => rt.ops.slice(img.latents, 0, v, 1)),
                  0,
                );
          const alpha = engine.tensor(sqrtA, [B, L, h, w]);
          const sigma = engine.tensor(sqrt1mA, [B, L, h, w]);
          const zt = add(mul(z0, alpha), mul(eps, sigma));
          // what the UNet predicts: ε, or v = √ᾱ·ε − √(1−ᾱ)·z₀ for v-prediction models (SD 2.x 768)
          const target = diffusionTarget(rt.ops, predictionType, z0, eps, alpha, sigma);
          // 5c. Eq. 1 through the dual path, plus the two L2 anchors
          const loss = tuningLoss(rt.ops, rt.text, rt.unet, {
            theta,
            theta0: { vStar: v0, lora: lora0 },
            zt,
            t: ts,
            eps: target,
            tokens: prompt.tokens,
            hardContext: prompt.hard,
            blend: o.blend,
            lambdaWeights: o.lambdaWeights,
            lambdaEmbedding: o.lambdaEmbedding,
            checkpointing: o.checkpointing ?? checkpointingByDefault(rt),
          });
          // 5d. gradients of everything in θ
          engine.backward(loss.total);
          return { total: (await loss.total.read())[0], diffusion: (await loss.diffusion.read())[0] };
        });
        if (!Number.isFinite(total)) {
          throw new NumericalError(
            `tuning diverged at step ${step + 1} (loss ${total}); ${guess.fromEncoder ? "the encoder's prediction" : 'the class-word start'} is kept — try a lower learning rate`,
            initial,
          );
        }
        // 5e. Adam step on θ
        opt.step();
        opt.zeroGrad();
        lossCurve.push(total);
        onEvent({ stage: 'tuning', step: step + 1, steps: o.steps, loss: total, diffusionLoss: diffusion });
      }
      // 6. read θ back
      const tuned: InitialGuess = {
        vStar: await vStar.read(),
        lora: await Promise.all(
          guess.lora.map(async (l) => ({
            ...l,
            A: await lora.get(l.module)!.A.read(),
            B: await lora.get(l.module)!.B.read(),
          })),
        ),
        fromEncoder: guess.fromEncoder,
        start: guess.start,
      };
      onEvent({ stage: 'done' });
      await releaseFreeBuffers(engine);
      return guessToConcept(rt, tuned, hardTokenId, near.words, o, lossCurve);
    } finally {
      engine.clearTape();
      opt.dispose();
    }
  } finally {
    for (const t of owned) t.dispose();
  }
}
