// Prompts with a placeholder (default "S*"): the placeholder becomes one token slot whose
// embedding is v* (prompt C) or the hard token v_h (prompt C_h), as in the paper's Eq. 3.
// An imported embedding with k vectors (A1111 / diffusers multi-vector textual inversion)
// makes the placeholder k consecutive slots, vector j in slot j, as those tools expand it.
import type { Tensor } from '../engine/tensor.ts';
import type { ClipTextConfig } from '../models/clip/clip-config.ts';
import { clipText, clipTokenEmbeddings } from '../models/clip/clip-text.ts';
import type { Params } from '../models/params.ts';
import type { TensorOps } from '../models/tensor-ops.ts';
import { CONTEXT_LENGTH, END_OF_TEXT, START_OF_TEXT } from './clip-tokenizer.ts';
import type { PackRuntime } from './pack-runtime.ts';

export interface PromptTokens {
  ids: Int32Array;
  /** Positions of the placeholder's slot(s) in `ids`. */
  slots: number[];
  /** For a k-vector placeholder: which vector (0 … k−1) fills each slot; absent: vector 0 everywhere. */
  slotVectors?: number[];
}

/**
 * Tokenize `prompt`, giving each occurrence of `placeholder` one slot filled with
 * `slotId` (the hard token), or k slots filled with `slotId[0 … k−1]` for a k-vector
 * placeholder. Truncated to 77 with end-of-text last, padded with it.
 */
export function tokenizeWithPlaceholder(
  rt: PackRuntime,
  prompt: string,
  placeholder: string | null,
  slotId: number | readonly number[],
): PromptTokens {
  const parts = placeholder ? prompt.split(placeholder) : [prompt];
  const slotIds = typeof slotId === 'number' ? [slotId] : slotId;
  if (slotIds.length === 0) throw new Error('tokenizeWithPlaceholder: a placeholder needs at least one slot id');
  const ids: number[] = [START_OF_TEXT];
  const slots: number[] = [];
  const slotVectors: number[] = [];
  parts.forEach((part, i) => {
    if (i > 0) {
      slotIds.forEach((id, j) => {
        slots.push(ids.length);
        slotVectors.push(j);
        ids.push(id);
      });
    }
    ids.push(...rt.tokenizer.encode(part));
  });
  ids.push(END_OF_TEXT);
  if (ids.length > CONTEXT_LENGTH) {
    ids.length = CONTEXT_LENGTH;
    ids[CONTEXT_LENGTH - 1] = END_OF_TEXT;
  }
  // SD 1.x pads with end-of-text, SD 2.x with "!" (the pack's tokenizer.padToken).
  const out = new Int32Array(CONTEXT_LENGTH).fill(rt.padId);
  out.set(ids);
  const kept = slots.map((s, i) => [s, slotVectors[i]]).filter(([s]) => s < CONTEXT_LENGTH - 1);
  return {
    ids: out,
    slots: kept.map(([s]) => s),
    ...(slotIds.length > 1 ? { slotVectors: kept.map(([, j]) => j) } : {}),
  };
}

const positionIds = () => ({
  data: Int32Array.from({ length: CONTEXT_LENGTH }, (_, i) => i),
  shape: [1, CONTEXT_LENGTH],
});

/**
 * C: the text encoder's output for `tokens` with v* (shape (C) or (1, C)) written into every
 * slot, on any backend. Differentiable in v*: the splice is emb·keep + onehot·v*. A (k, C)
 * v* with k > 1 fills slot s with row tokens.slotVectors[s]: emb·keep + P·v*, P the (77, k)
 * one-hot of the slots.
 */
export function encodePromptWith<T>(
  ops: TensorOps<T, { data: Int32Array; shape: readonly number[] }>,
  params: Params<T>,
  config: ClipTextConfig,
  tokens: PromptTokens,
  vStar: T | null,
): T {
  const C = config.hidden_size;
  let emb = clipTokenEmbeddings(ops, params, config, { data: tokens.ids, shape: [1, CONTEXT_LENGTH] });
  const vShape = vStar ? ops.shape(vStar) : [];
  const k = vShape.length === 2 ? vShape[0] : 1;
  if (vStar && tokens.slots.length > 0 && k > 1) {
    const keep = new Float32Array(CONTEXT_LENGTH).fill(1);
    const place = new Float32Array(CONTEXT_LENGTH * k);
    tokens.slots.forEach((s, i) => {
      const j = tokens.slotVectors?.[i] ?? 0;
      if (!(j >= 0 && j < k)) throw new Error(`encodePrompt: slot ${s} wants vector ${j} of ${k}`);
      keep[s] = 0;
      place[s * k + j] = 1;
    });
    emb = ops.add(
      ops.mul(emb, ops.constant(keep, [1, CONTEXT_LENGTH, 1])),
      ops.reshape(ops.matmul(ops.constant(place, [CONTEXT_LENGTH, k]), vStar), [1, CONTEXT_LENGTH, C]),
    );
  } else if (vStar && tokens.slots.length > 0) {
    const keep = new Float32Array(CONTEXT_LENGTH).fill(1);
    const place = new Float32Array(CONTEXT_LENGTH);
    for (const s of tokens.slots) {
      keep[s] = 0;
      place[s] = 1;
    }
    emb = ops.add(
      ops.mul(emb, ops.constant(keep, [1, CONTEXT_LENGTH, 1])),
      ops.mul(ops.constant(place, [1, CONTEXT_LENGTH, 1]), ops.reshape(vStar, [1, 1, C])),
    );
  }
  return clipText(ops, params, config, emb, positionIds());
}

/** encodePromptWith on the pack's engine runtime. */
export function encodePrompt(rt: PackRuntime, tokens: PromptTokens, vStar: Tensor | null): Tensor {
  return encodePromptWith(rt.ops, rt.text.params, rt.text.config, tokens, vStar);
}
