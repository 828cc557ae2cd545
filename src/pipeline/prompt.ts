// Prompts with a placeholder (default "S*"): the placeholder becomes one token slot whose
// embedding is v* (prompt C) or the hard token v_h (prompt C_h), as in the paper's Eq. 3.
import type { Tensor } from '../engine/tensor.ts';
import { clipText, clipTokenEmbeddings } from '../models/clip/clip-text.ts';
import { CONTEXT_LENGTH, END_OF_TEXT, START_OF_TEXT } from './clip-tokenizer.ts';
import type { PackRuntime } from './pack-runtime.ts';

export interface PromptTokens {
  ids: Int32Array;
  /** Positions of the placeholder's slot(s) in `ids`. */
  slots: number[];
}

/**
 * Tokenize `prompt`, giving each occurrence of `placeholder` one slot filled with
 * `slotId` (the hard token). Truncated to 77 with end-of-text last, padded with it.
 */
export function tokenizeWithPlaceholder(rt: PackRuntime, prompt: string, placeholder: string | null, slotId: number): PromptTokens {
  const parts = placeholder ? prompt.split(placeholder) : [prompt];
  const ids: number[] = [START_OF_TEXT];
  const slots: number[] = [];
  parts.forEach((part, i) => {
    if (i > 0) {
      slots.push(ids.length);
      ids.push(slotId);
    }
    ids.push(...rt.tokenizer.encode(part));
  });
  ids.push(END_OF_TEXT);
  if (ids.length > CONTEXT_LENGTH) {
    ids.length = CONTEXT_LENGTH;
    ids[CONTEXT_LENGTH - 1] = END_OF_TEXT;
  }
  const out = new Int32Array(CONTEXT_LENGTH).fill(END_OF_TEXT);
  out.set(ids);
  return { ids: out, slots: slots.filter((s) => s < CONTEXT_LENGTH - 1) };
}

const positions = { data: Int32Array.from({ length: CONTEXT_LENGTH }, (_, i) => i), shape: [1, CONTEXT_LENGTH] };

/**
 * C: the text encoder's output for `tokens` with v* written into every slot. Differentiable
 * in v* (shape (C) or (1, C)): the splice is emb·keep + onehot·v*, all on the tape.
 */
export function encodePrompt(rt: PackRuntime, tokens: PromptTokens, vStar: Tensor | null): Tensor {
  const { ops, engine } = rt;
  const C = rt.tokenDim;
  let emb = clipTokenEmbeddings(ops, rt.text.params, rt.text.config, { data: tokens.ids, shape: [1, CONTEXT_LENGTH] });
  if (vStar && tokens.slots.length > 0) {
    const keep = new Float32Array(CONTEXT_LENGTH).fill(1);
    const place = new Float32Array(CONTEXT_LENGTH);
    for (const s of tokens.slots) {
      keep[s] = 0;
      place[s] = 1;
    }
    emb = ops.add(
      ops.mul(emb, engine.tensor(keep, [1, CONTEXT_LENGTH, 1])),
      ops.mul(engine.tensor(place, [1, CONTEXT_LENGTH, 1]), ops.reshape(vStar, [1, 1, C])),
    );
  }
  return clipText(ops, rt.text.params, rt.text.config, emb, positions);
}
