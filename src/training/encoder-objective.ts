// The encoder's pre-training objective on one batch (paper §3.2–3.3, App. A–C), on the engine:
//
//   L = ‖ε − ε_θ(z_t, t, C(v*), ΔW; C_h)‖²                 (Eq. 1 through the dual path, Eq. 3)
//     + λ_e·mean_b ‖v*_b‖²                                  (reg ≠ none)
//     + λ_r·mean_b (1 − cos(v*_b, v_h(b)))                  (reg = nn-cosine, a VQGAN-style codebook term)
//     + λ_r·L_c(v*, N(v*))                                  (reg = contrastive, Eq. 2)
//     + λ_h·mean_b Σ_i ‖ΔW_i(b)‖²_F                         (hyper-weights L2, every setting)
//
// Per image b: the frozen backbones read the augmented view (CLIP vision's last hidden state;
// the UNet encoder on the clean latent with the empty prompt), the encoder predicts v*_b and
// A_i(b), B_i(b); N(v*_b) are the k vocabulary rows nearest v*_b by cosine similarity (special
// tokens excluded) and v_h(b) the first of them; the prompt is a random template with the
// placeholder, encoded with v*_b in its slot (C) and with v_h(b) (C_h). The UNet runs the whole
// batch at once with per-image LoRA (A: (B, r, in), B: (B, out, r)) and per-image t.
// The selection of N(v*) and v_h is not differentiated (it is an argmax); the positives and
// the nearest token enter the loss as constants, as a codebook entry does in VQGAN's loss.
import type { Tensor } from '../engine/tensor.ts';
import { add, addScalar, mul, scale, sub } from '../kernels/binary/binary.ts';
import { contrastiveLoss } from '../kernels/contrastive-loss/contrastive-loss.ts';
import { cosineSimilarity, topK } from '../kernels/cosine-top-k/cosine-top-k.ts';
import { clipText, clipTokenEmbeddings } from '../models/clip/clip-text.ts';
import type { ClipTextConfig } from '../models/clip/clip-config.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import type { LoraSet } from '../models/lora.ts';
import type { Params } from '../models/params.ts';
import type { TensorOps } from '../models/tensor-ops.ts';
import { tuningEncoder } from '../models/tuning-encoder/tuning-encoder.ts';
import type { LoraTarget, TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { unet, unetEncoderFeatures } from '../models/unet/unet.ts';
import { vaeEncode } from '../models/vae/vae.ts';
import { CONTEXT_LENGTH, END_OF_TEXT, START_OF_TEXT } from '../pipeline/clip-tokenizer.ts';
import { toClipPixels, toVaePixels } from '../image/pixels.ts';
import type { PackRuntime } from '../pipeline/pack-runtime.ts';
import { TUNING_TEMPLATES } from '../pipeline/personalize.ts';
import { tokenizeWithPlaceholder, type PromptTokens } from '../pipeline/prompt.ts';
import { augmentView, type AugmentDraw, type TrainingImage } from './training-data.ts';

export const EMBEDDING_REGULARIZERS = ['none', 'l2', 'nn-cosine', 'contrastive'] as const;
/** App. C's four settings: none; L2 on ‖v*‖² only; L2 + cosine distance to the nearest token; L2 + Eq. 2. */
export type EmbeddingRegularizer = (typeof EMBEDDING_REGULARIZERS)[number];

export interface ObjectiveSettings {
  reg: EmbeddingRegularizer;
  /** λ_e of mean ‖v*‖² (every setting but none). */
  lambdaEmbedding: number;
  /** λ_r: weight of the nearest-token cosine distance (nn-cosine) or of L_c (contrastive). */
  lambdaReg: number;
  /** λ_h of Σ_i ‖ΔW_i‖². */
  lambdaHyper: number;
  /** τ of Eq. 2. */
  tau: number;
  /** k = |N(v*)|, the positives of Eq. 2. */
  positives: number;
  /** α of Eq. 3 during pre-training. */
  blend: number;
  placeholder: string;
}

/** One sample with every random choice already drawn. */
export interface SampleDraw {
  image: number;
  augment: AugmentDraw;
  /** Diffusion timestep. */
  t: number;
  /** Index into TUNING_TEMPLATES. */
  template: number;
  /** ε: (latent channels · h · w) */
  noise: Float32Array;
}

/** The trainable encoder: its configuration, LoRA targets and parameters (engine tensors). */
export interface EncoderModel {
  config: TuningEncoderConfig;
  targets: readonly LoraTarget[];
  params: Params<Tensor>;
}

export const LOSS_TERMS = ['total', 'diffusion', 'embeddingL2', 'nnCosine', 'contrastive', 'hyper'] as const;
export type LossTerm = (typeof LOSS_TERMS)[number];

export interface ObjectiveOutput {
  /** The weighted sum: (1). */
  total: Tensor;
  /** Each term before weighting, (1); null where the setting does not use it. */
  terms: Record<Exclude<LossTerm, 'total'>, Tensor | null>;
  /** v*: (B, C) */
  embedding: Tensor;
  /** Hard-token ids v_h, one per image. */
  hardTokens: number[];
}

/** Constants shared by every batch: the empty prompt's encoding and ᾱ_t. */
export interface ObjectiveConstants {
  /** The empty prompt through the text encoder: (1, 77, C). */
  emptyContext: Tensor;
  alphasCumprod: Float64Array | readonly number[];
}

/**
 * The text encoder on B prompts at once, v*_b written into prompt b's placeholder slot(s)
 * (the batched form of encodePromptWith). tokens: B × 77 ids, vStar: (B, C) or null → (B, 77, C)
 */
export function encodePromptsBatched<T>(
  ops: TensorOps<T, { data: Int32Array; shape: readonly number[] }>,
  params: Params<T>,
  config: ClipTextConfig,
  tokens: readonly PromptTokens[],
  vStar: T | null,
): T {
  const B = tokens.length;
  const C = config.hidden_size;
  const ids = new Int32Array(B * CONTEXT_LENGTH);
  tokens.forEach((t, b) => ids.set(t.ids, b * CONTEXT_LENGTH));
  let emb = clipTokenEmbeddings(ops, params, config, { data: ids, shape: [B, CONTEXT_LENGTH] });
  if (vStar && tokens.some((t) => t.slots.length > 0)) {
    const keep = new Float32Array(B * CONTEXT_LENGTH).fill(1);
    const place = new Float32Array(B * CONTEXT_LENGTH);
    tokens.forEach((t, b) => {
      for (const s of t.slots) {
        keep[b * CONTEXT_LENGTH + s] = 0;
        place[b * CONTEXT_LENGTH + s] = 1;
      }
    });
    emb = ops.add(
      ops.mul(emb, ops.constant(keep, [B, CONTEXT_LENGTH, 1])),
      ops.mul(ops.constant(place, [B, CONTEXT_LENGTH, 1]), ops.reshape(vStar, [B, 1, C])),
    );
  }
  const positions = { data: Int32Array.from({ length: CONTEXT_LENGTH }, (_, i) => i), shape: [1, CONTEXT_LENGTH] };
  return clipText(ops, params, config, emb, positions);
}

/**
 * mean over the batch of Σ_i ‖ΔW_i‖²_F with ΔW_i = s·B_i·A_i, without forming ΔW:
 * ‖B·A‖²_F = tr(Aᵀ BᵀB A) = ⟨BᵀB, A·Aᵀ⟩, two r × r products per target. → (1)
 */
export function deltaWSquaredNorm<T>(ops: TensorOps<T>, lora: LoraSet<T>): T {
  let total: T | null = null;
  for (const { A, B } of lora.layers.values()) {
    const r = ops.shape(A)[1];
    const aat = ops.matmul(A, ops.transpose(A, [0, 2, 1])); // (n, r, r)
    const btb = ops.matmul(ops.transpose(B, [0, 2, 1]), B); // (n, r, r)
    // mean over n·r·r entries × r·r = (1/n)·Σ_b ⟨BᵀB, AAᵀ⟩
    const term = ops.scale(ops.mean(ops.mul(aat, btb), [0, 1, 2]), r * r);
    total = total === null ? term : ops.add(total, term);
  }
  if (total === null) throw new Error('deltaWSquaredNorm: no LoRA layers');
  return ops.reshape(ops.scale(total, lora.scale * lora.scale), [1]);
}

/**
 * The objective on one batch; gradients reach the encoder's parameters when gradients are
 * on (call inside engine.noGrad for an evaluation). Run it inside a scope.
 */
export async function encoderObjective(
  rt: PackRuntime,
  enc: EncoderModel,
  images: readonly TrainingImage[],
  draws: readonly SampleDraw[],
  w: ObjectiveSettings,
  k: ObjectiveConstants,
): Promise<ObjectiveOutput> {
  const { engine, ops } = rt;
  const B = draws.length;
  const C = rt.tokenDim;
  const size = rt.manifest.imageSize;
  const S = rt.vision.config.image_size;
  const L = rt.unet.config.in_channels;
  const h = rt.manifest.latentSize;

  // 1. augmented views → VAE pixels (B, 3, size, size) and CLIP pixels (B, 3, S, S)
  const vaePixels = new Float32Array(B * 3 * size * size);
  const clipPixels = new Float32Array(B * 3 * S * S);
  draws.forEach((d, b) => {
    const view = augmentView(images[d.image].square, d.augment, Math.max(size, S));
    vaePixels.set(toVaePixels(view.data, view.width, view.height, size), b * 3 * size * size);
    clipPixels.set(toClipPixels(view.data, view.width, view.height, S), b * 3 * S * S);
  });

  // 2. frozen backbones: z₀, CLIP spatial tokens, UNet-encoder features (empty prompt)
  const { z0, clipTokens, features } = engine.noGrad(() => {
    const z0 = scale(
      vaeEncode(ops, rt.vae.params, rt.vae.config, engine.tensor(vaePixels, [B, 3, size, size])).mean,
      rt.manifest.vaeScalingFactor,
    );
    const clipTokens = clipVision(
      ops,
      rt.vision.params,
      rt.vision.config,
      engine.tensor(clipPixels, [B, 3, S, S]),
    ).lastHiddenState;
    const features = unetEncoderFeatures(ops, rt.unet.params, rt.unet.config, {
      sample: z0,
      timesteps: draws.map(() => enc.config.unet_timestep),
      cond: { context: ops.broadcastTo(k.emptyContext, [B, CONTEXT_LENGTH, C]), lora: null, dual: null },
    });
    return { z0, clipTokens, features };
  });

  // 3. the encoder: v* (B, C) and A_i (B, r, in), B_i (B, out, r)
  const out = tuningEncoder(ops, enc.params, enc.config, enc.targets, clipTokens, features);
  const v = out.embedding;

  // 4. N(v*) and v_h by cosine similarity over the vocabulary (a selection: no gradient)
  const K = Math.max(1, w.positives);
  const { indices } = await topK(
    engine.noGrad(() => cosineSimilarity(v, rt.tokenTableTensor())),
    K,
    [START_OF_TEXT, END_OF_TEXT],
  );
  const hardTokens = Array.from({ length: B }, (_, b) => indices[b * K]);

  // 5. C (v* in the slot, differentiable) and C_h (the hard token in the slot)
  const tokens = draws.map((d, b) =>
    tokenizeWithPlaceholder(
      rt,
      TUNING_TEMPLATES[d.template % TUNING_TEMPLATES.length].replace('{}', w.placeholder),
      w.placeholder,
      hardTokens[b],
    ),
  );
  const context = encodePromptsBatched(ops, rt.text.params, rt.text.config, tokens, v);
  const hardContext = engine.noGrad(() => encodePromptsBatched(ops, rt.text.params, rt.text.config, tokens, null));

  // 6. z_t = √ᾱ_t·z₀ + √(1−ᾱ_t)·ε per image, then Eq. 1 through the dual path with per-image LoRA
  const noise = new Float32Array(B * L * h * h);
  draws.forEach((d, b) => noise.set(d.noise, b * L * h * h));
  const eps = engine.tensor(noise, [B, L, h, h]);
  const a = draws.map((d) => k.alphasCumprod[d.t]);
  const zt = engine.noGrad(() =>
    add(
      mul(z0, engine.tensor(a.map(Math.sqrt), [B, 1, 1, 1])),
      mul(
        eps,
        engine.tensor(
          a.map((x) => Math.sqrt(1 - x)),
          [B, 1, 1, 1],
        ),
      ),
    ),
  );
  const epsHat = unet(ops, rt.unet.params, rt.unet.config, {
    sample: zt,
    timesteps: draws.map((d) => d.t),
    cond: { context, lora: out.lora, dual: { hardContext, alpha: w.blend } },
  });
  const d = sub(epsHat, eps);
  const diffusion = ops.reshape(ops.mean(mul(d, d), [0, 1, 2, 3]), [1]);

  // 7. the regularisers
  const terms: ObjectiveOutput['terms'] = {
    diffusion,
    embeddingL2: null,
    nnCosine: null,
    contrastive: null,
    hyper: null,
  };
  let total = diffusion;
  if (w.reg !== 'none') {
    terms.embeddingL2 = scale(ops.reshape(ops.mean(mul(v, v), [0, 1]), [1]), C); // mean_b ‖v*_b‖²
    total = add(total, scale(terms.embeddingL2, w.lambdaEmbedding));
  }
  if (w.reg === 'nn-cosine') {
    // cos(v*_b, v_h(b)) is the diagonal of the (B, B) similarity matrix.
    const sim = cosineSimilarity(v, rt.tokenRows(hardTokens));
    const eye = new Float32Array(B * B);
    for (let b = 0; b < B; b++) eye[b * B + b] = 1;
    const meanCos = scale(ops.reshape(ops.mean(mul(sim, engine.tensor(eye, [B, B])), [0, 1]), [1]), B);
    terms.nnCosine = addScalar(scale(meanCos, -1), 1);
    total = add(total, scale(terms.nnCosine, w.lambdaReg));
  }
  if (w.reg === 'contrastive') {
    terms.contrastive = contrastiveLoss(v, rt.tokenRows([...indices], [B, K]), w.tau);
    total = add(total, scale(terms.contrastive, w.lambdaReg));
  }
  if (w.lambdaHyper > 0) {
    terms.hyper = deltaWSquaredNorm(ops, out.lora);
    total = add(total, scale(terms.hyper, w.lambdaHyper));
  } else {
    terms.hyper = engine.noGrad(() => deltaWSquaredNorm(ops, out.lora)); // logged, not trained on
  }
  return { total, terms, embedding: v, hardTokens };
}
