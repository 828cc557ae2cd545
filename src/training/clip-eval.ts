// Evaluation of personalization (paper App. B, ablations of App. D): per concept (one photo)
// and variant, images are generated for every prompt and scored with CLIP:
//   identity    — image–image: cosine of CLIP image_embeds (vision tower + visual projection)
//                 of each generated image and of the input photo;
//   editability — text–image: cosine of the generated image's image_embeds and the prompt's
//                 text embedding, the prompt with the placeholder removed (as Textual
//                 Inversion scores prompt fidelity).
// Variants: full (encoder + tuning at the default tuning α, DEFAULTS.personalize.tuningBlend),
// no tuning (the encoder's prediction, 0 steps), no dual path (α = 1 while tuning and
// generating: Eq. 3 switched off), no hypernetwork (the hypernetwork's A and B predicted as
// zero, so ΔW = 0 throughout and tuning moves v* only).
//
// The CLIP here is the pack's own: its image encoder (with projection) and its text encoder.
// The text encoder is CLIPTextModel without text_projection, so the text side is the pooled
// output (last_hidden_state at the end-of-text token, after final_layer_norm), which lives in
// a different space than the projected image embedding. The text–image number is computed only
// where the two sizes agree, and even then it is NOT the paper's metric (ViT-B/16 CLIP,
// projected text and image embeddings) — the report says so.
import type { Tensor } from '../engine/tensor.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import type { ParamSource } from '../models/params.ts';
import { Params } from '../models/params.ts';
import { END_OF_TEXT } from '../pipeline/clip-tokenizer.ts';
import { generate } from '../pipeline/generate.ts';
import { toClipPixels } from '../image/pixels.ts';
import { cropRect } from '../image/transform.ts';
import type { RgbaImage } from '../image/types.ts';
import type { PackRuntime } from '../pipeline/pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize } from '../pipeline/personalize.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../pipeline/prompt.ts';
import type { SamplerName } from '../domain/samplers.ts';
import type { ConceptData } from '../domain/types.ts';

export const EVAL_VARIANTS = ['full', 'no-tuning', 'no-dual-path', 'no-hypernetwork'] as const;
export type EvalVariant = (typeof EVAL_VARIANTS)[number];

export interface EvalOptions {
  /** Prompts containing the placeholder ("{}" is replaced by it too). */
  prompts: string[];
  placeholder: string;
  /** Tuning steps of the tuned variants (paper: ≤ 12). */
  tuningSteps: number;
  samplingSteps: number;
  guidance: number;
  sampler: SamplerName;
  /** Prompt i is sampled with seed + i (the same noise for every variant). */
  seed: number;
  variants: readonly EvalVariant[];
}

export interface EvalRow {
  concept: string;
  variant: EvalVariant;
  /** Mean over prompts of cos(image_embeds(generated), image_embeds(input)). */
  imageSimilarity: number;
  /** Mean over prompts of cos(image_embeds(generated), text pooled output); null when not comparable. */
  textSimilarity: number | null;
  /** Per prompt, in order. */
  perPrompt: { prompt: string; imageSimilarity: number; textSimilarity: number | null }[];
  nearestWords: string[];
  seconds: number;
}

export interface EvalReport {
  rows: EvalRow[];
  /** Mean over concepts per variant. */
  means: { variant: EvalVariant; imageSimilarity: number; textSimilarity: number | null }[];
  notes: string[];
  settings: Omit<EvalOptions, 'prompts'> & {
    prompts: string[];
    pack: string;
    packHash: string;
    encoderTrained: boolean;
  };
}

export type EvalEvent =
  | { stage: 'concept'; concept: string; variant: EvalVariant }
  | {
      stage: 'image';
      concept: string;
      variant: EvalVariant;
      prompt: number;
      prompts: number;
      imageSimilarity: number;
      textSimilarity: number | null;
    };

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine: ${a.length} vs ${b.length} values`);
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.max(Math.sqrt(na * nb), 1e-12);
}

/** CLIP image_embeds of an image (centre square, CLIP preprocessing). */
export async function clipImageEmbedding(rt: PackRuntime, image: RgbaImage): Promise<Float32Array> {
  const { engine, ops } = rt;
  const S = rt.vision.config.image_size;
  const square = image.width === image.height ? image : cropRect(image);
  const pixels = toClipPixels(square.data, square.width, square.height, S);
  return engine.noGrad(() =>
    engine.scopeAsync(() =>
      clipVision(ops, rt.vision.params, rt.vision.config, engine.tensor(pixels, [1, 3, S, S])).imageEmbeds.read(),
    ),
  );
}

/** Whether the text pooled output and image_embeds have the same size (see the file comment). */
export function textImageComparable(rt: PackRuntime): boolean {
  const v = rt.vision.config;
  return (v.projection_dim ?? v.hidden_size) === rt.text.config.hidden_size;
}

/** The text encoder's pooled output: last_hidden_state at the first end-of-text token. */
export async function clipTextPooled(rt: PackRuntime, text: string): Promise<Float32Array> {
  const { engine } = rt;
  const tokens = tokenizeWithPlaceholder(rt, text, null, 0);
  const eos = tokens.ids.indexOf(END_OF_TEXT);
  const C = rt.tokenDim;
  const hidden = await engine.noGrad(() => engine.scopeAsync(() => encodePrompt(rt, tokens, null).read()));
  return hidden.slice(eos * C, (eos + 1) * C);
}

/** The prompt as the text–image score reads it: placeholder removed, spaces tidied. */
export function promptWithoutPlaceholder(prompt: string, placeholder: string): string {
  return prompt.split(placeholder).join(' ').replace(/\s+/g, ' ').trim();
}

/** Hands out zeros for the hypernetwork's A/B heads: ΔW = 0 whatever the image. */
class ZeroHypernetworkSource implements ParamSource<Tensor> {
  private readonly zeros = new Map<string, Tensor>();
  constructor(
    private readonly rt: PackRuntime,
    private readonly inner: Params<Tensor>,
  ) {}

  get(name: string, shape: readonly number[]): Tensor {
    if (!name.startsWith('hyper.a_heads.') && !name.startsWith('hyper.b_heads.')) return this.inner.get(name, shape);
    let z = this.zeros.get(name);
    if (!z) {
      this.inner.get(name, shape); // same name and shape checks as the real parameter
      z = this.rt.engine.keep(this.rt.engine.zeros(shape));
      this.zeros.set(name, z);
    }
    return z;
  }

  has(name: string): boolean {
    return this.inner.has(name);
  }

  dispose(): void {
    for (const z of this.zeros.values()) z.dispose();
  }
}

/** The pack runtime seen through an encoder whose hypernetwork predicts nothing. */
function withoutHypernetwork(rt: PackRuntime): { rt: PackRuntime; dispose: () => void } {
  if (!rt.encoder) throw new Error('eval: the pack has no tuning encoder');
  const source = new ZeroHypernetworkSource(rt, rt.encoder.params);
  const view = Object.create(rt, { encoder: { value: { ...rt.encoder, params: new Params(source) } } }) as PackRuntime;
  return { rt: view, dispose: () => source.dispose() };
}

async function conceptFor(
  rt: PackRuntime,
  image: RgbaImage,
  variant: EvalVariant,
  o: EvalOptions,
): Promise<ConceptData> {
  const base = { ...DEFAULT_PERSONALIZE, placeholder: o.placeholder, steps: o.tuningSteps, seed: o.seed };
  if (variant === 'full') return personalize(rt, image, base);
  if (variant === 'no-tuning') return personalize(rt, image, { ...base, steps: 0 });
  if (variant === 'no-dual-path') return personalize(rt, image, { ...base, blend: 1 });
  const view = withoutHypernetwork(rt);
  try {
    const c = await personalize(view.rt, image, base);
    if (c.lora.some((l) => l.A.some((x) => x !== 0) || l.B.some((x) => x !== 0)))
      throw new Error('eval: no-hypernetwork variant has a non-zero LoRA');
    return c;
  } finally {
    view.dispose();
  }
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function evaluateConcepts(
  rt: PackRuntime,
  concepts: readonly { id: string; image: RgbaImage }[],
  o: EvalOptions,
  onEvent: (e: EvalEvent) => void = () => {},
): Promise<EvalReport> {
  if (!rt.encoder) throw new Error('eval: the pack has no tuning encoder (the variants ablate its parts)');
  if (concepts.length === 0 || o.prompts.length === 0)
    throw new Error('eval: needs at least one concept and one prompt');
  const prompts = o.prompts.map((p) => p.split('{}').join(o.placeholder));
  for (const p of prompts)
    if (!p.includes(o.placeholder)) throw new Error(`eval: the prompt "${p}" has no placeholder ${o.placeholder}`);
  const comparable = textImageComparable(rt);
  const textEmb: (Float32Array | null)[] = [];
  for (const p of prompts)
    textEmb.push(comparable ? await clipTextPooled(rt, promptWithoutPlaceholder(p, o.placeholder)) : null);
  const rows: EvalRow[] = [];
  for (const c of concepts) {
    const inputEmb = await clipImageEmbedding(rt, c.image);
    for (const variant of o.variants) {
      onEvent({ stage: 'concept', concept: c.id, variant });
      const t0 = performance.now();
      const concept = await conceptFor(rt, c.image, variant, o);
      const perPrompt: EvalRow['perPrompt'] = [];
      for (const [i, prompt] of prompts.entries()) {
        const [img] = await generate(rt, {
          prompt,
          negativePrompt: '',
          steps: o.samplingSteps,
          guidance: o.guidance,
          sampler: o.sampler,
          blend: concept.blend,
          seed: o.seed + i,
          batch: 1,
          concept,
          previewEvery: 0,
        });
        const emb = await clipImageEmbedding(rt, { width: img.width, height: img.height, data: img.rgba });
        const imageSimilarity = cosine(emb, inputEmb);
        const textSimilarity = textEmb[i] ? cosine(emb, textEmb[i]) : null;
        perPrompt.push({ prompt, imageSimilarity, textSimilarity });
        onEvent({
          stage: 'image',
          concept: c.id,
          variant,
          prompt: i + 1,
          prompts: prompts.length,
          imageSimilarity,
          textSimilarity,
        });
      }
      rows.push({
        concept: c.id,
        variant,
        imageSimilarity: mean(perPrompt.map((p) => p.imageSimilarity)),
        textSimilarity: comparable ? mean(perPrompt.map((p) => p.textSimilarity!)) : null,
        perPrompt,
        nearestWords: concept.nearestWords,
        seconds: (performance.now() - t0) / 1000,
      });
    }
  }
  const means = o.variants.map((variant) => {
    const rs = rows.filter((r) => r.variant === variant);
    return {
      variant,
      imageSimilarity: mean(rs.map((r) => r.imageSimilarity)),
      textSimilarity: comparable ? mean(rs.map((r) => r.textSimilarity!)) : null,
    };
  });
  const v = rt.vision.config;
  const notes = [
    `image–image: cosine of CLIP image_embeds (the pack's image encoder, ${v.hidden_size}-wide, projection ${v.projection_dim ?? 'none'}) of each generated image and the input photo.`,
    comparable
      ? `text–image: cosine of the generated image's image_embeds (${v.projection_dim ?? v.hidden_size}) and the pack's text-encoder POOLED output (${rt.text.config.hidden_size}; end-of-text token after final_layer_norm, prompt without the placeholder). The pack has no CLIP text_projection, so the two vectors are not in a shared space: the sizes only happen to agree. This is NOT the paper's text–image metric (ViT-B/16 CLIP, projected embeddings); compare it across variants only.`
      : `text–image: not computed — the pack's text encoder (${rt.text.config.hidden_size}) has no CLIP text projection into the image embedding space (${v.projection_dim ?? v.hidden_size}).`,
    `variants: full = encoder + ${o.tuningSteps} tuning steps at α ${DEFAULT_PERSONALIZE.blend}; no-tuning = the encoder's prediction (0 steps); no-dual-path = α 1 while tuning and generating; no-hypernetwork = the hypernetwork's A, B set to zero (tuning moves v* only).`,
  ];
  if ((rt.encoder.config as { trained?: boolean }).trained === false) {
    notes.push(
      "the pack's tuning encoder is UNTRAINED (deterministic initialisation): the numbers exercise the pipeline, not the method's quality.",
    );
  }
  return {
    rows,
    means,
    notes,
    settings: {
      ...o,
      prompts,
      pack: rt.manifest.name,
      packHash: rt.hash,
      encoderTrained: (rt.encoder.config as { trained?: boolean }).trained !== false,
    },
  };
}

const num = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));

/** The report as a markdown table (per concept and variant, then the means), with its notes. */
export function reportMarkdown(r: EvalReport): string {
  const lines = [
    `# Likeness eval — pack "${r.settings.pack}"`,
    '',
    `${r.rows.length / Math.max(1, r.settings.variants.length)} concept(s) × ${r.settings.prompts.length} prompt(s); sampler ${r.settings.sampler}, ${r.settings.samplingSteps} steps, guidance ${r.settings.guidance}, seed ${r.settings.seed}.`,
    '',
    '| concept | variant | image–image ↑ | text–image ↑ | near | s |',
    '|---|---|---:|---:|---|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.concept} | ${x.variant} | ${num(x.imageSimilarity)} | ${num(x.textSimilarity)} | ${x.nearestWords.slice(0, 3).join(', ')} | ${x.seconds.toFixed(1)} |`,
    ),
    '',
    '| variant (mean over concepts) | image–image ↑ | text–image ↑ |',
    '|---|---:|---:|',
    ...r.means.map((m) => `| ${m.variant} | ${num(m.imageSimilarity)} | ${num(m.textSimilarity)} |`),
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}
