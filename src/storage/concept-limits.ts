// The rules for a concept's fields, shared by everything that makes or takes a concept:
// personalization (app worker and CLI, pipeline/personalize.ts), concept-file import and
// export (concept-safetensors.ts) and generation (pipeline/generate.ts). A concept that one
// of them would refuse is refused by all, with the same sentence. The numbers are in
// ../limits.ts.
import { BLEND, LORA_ALPHA, LORA_MAX_SCALE, LORA_RANK, PLACEHOLDER_MAX_CHARS } from '../domain/limits.ts';

/** What the placeholder and token-id rules need of the pack's tokenizer (ClipTokenizer fits). */
export interface ConceptVocabulary {
  /** Number of token ids: a token id is an integer in [0, vocabSize). */
  readonly vocabSize: number;
  /** The ids the tokenizer gives `text` (without start/end tokens). When absent, only the size is checked. */
  encode?(text: string): number[];
}

// The tokenizer's own markers, under every spelling a prompt might carry them in.
const SPECIAL_TOKENS = ['<|endoftext|>', '<|startoftext|>', '<start_of_text>', '<end_of_text>'];

// Characters that are invisible or reorder text: a placeholder holding one looks like
// another word (or like nothing) in a prompt. C0/C1 controls, soft hyphen, zero-width
// space/joiners, word joiner and invisible operators, bidi marks, embeddings, overrides and
// isolates, the byte-order mark, variation selectors, interlinear annotation and tag chars.
const INVISIBLE: readonly (readonly [number, number])[] = [
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x061c, 0x061c],
  [0x115f, 0x1160],
  [0x17b4, 0x17b5],
  [0x180b, 0x180f],
  [0x200b, 0x200f],
  [0x202a, 0x202e],
  [0x2060, 0x206f],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
  [0xfff9, 0xfffb],
  [0xe0000, 0xe0fff],
];

/** The first invisible or direction-changing code point of `p`, or null. */
function invisibleIn(p: string): number | null {
  for (const ch of p) {
    const c = ch.codePointAt(0)!;
    if (INVISIBLE.some(([lo, hi]) => c >= lo && c <= hi)) return c;
  }
  return null;
}

/**
 * Why `p` cannot be a placeholder, as a phrase that follows "the placeholder …", or null.
 * The same rules at creation and import: one made-up word that the tokenizer does not already
 * know as a single word, without spaces, invisible or direction-changing characters, and not
 * one of the tokenizer's markers. Without `vocab` the vocabulary rule is skipped.
 */
export function placeholderProblem(p: unknown, vocab?: ConceptVocabulary): string | null {
  if (typeof p !== 'string' || p.trim().length === 0) return 'is empty';
  if ([...p].length > PLACEHOLDER_MAX_CHARS) return `is longer than ${PLACEHOLDER_MAX_CHARS} characters`;
  const hidden = invisibleIn(p);
  if (hidden !== null) {
    const code = hidden.toString(16).toUpperCase().padStart(4, '0');
    return `holds the invisible or control character U+${code}, which would make it look like another word`;
  }
  if (/\s/u.test(p)) return `${JSON.stringify(p)} holds a space: it must be one word, like "S*"`;
  const lower = p.toLowerCase();
  if (SPECIAL_TOKENS.some((s) => lower.includes(s)))
    return `${JSON.stringify(p)} contains one of the tokenizer's markers (${SPECIAL_TOKENS[0]})`;
  if (vocab?.encode) {
    const ids = vocab.encode(p);
    if (ids.length === 0) return `${JSON.stringify(p)} has no characters the tokenizer reads`;
    if (ids.length === 1) {
      return `${JSON.stringify(p)} is a word the model already knows, so every prompt using that word would get the concept; choose a made-up word like "S*"`;
    }
  }
  return null;
}

/** Why `rank` is not a LoRA rank, or null. */
export function rankProblem(rank: unknown): string | null {
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < LORA_RANK.min! || rank > LORA_RANK.max)
    return `${String(rank)} is not a whole number in [${LORA_RANK.min}, ${LORA_RANK.max}]`;
  return null;
}

/** Why `alpha` is not a usable LoRA alpha for `rank`, or null. */
export function alphaProblem(alpha: unknown, rank: number): string | null {
  if (typeof alpha !== 'number' || !(alpha > LORA_ALPHA.above! && alpha <= LORA_ALPHA.max))
    return `${String(alpha)} is outside (0, ${LORA_ALPHA.max}]`;
  if (alpha / rank > LORA_MAX_SCALE)
    return `${alpha} gives the scale alpha / rank = ${alpha / rank}, above ${LORA_MAX_SCALE}`;
  return null;
}

/** Why `blend` is not a dual-path blend, or null. */
export function blendProblem(blend: unknown): string | null {
  if (typeof blend !== 'number' || !(blend >= BLEND.min! && blend <= BLEND.max))
    return `${String(blend)} is outside [${BLEND.min}, ${BLEND.max}]`;
  return null;
}

/** Why `id` is not a token of a `vocabSize`-token vocabulary, or null. */
export function tokenIdProblem(id: unknown, vocabSize: number): string | null {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id >= vocabSize)
    return `${String(id)} is not a token id of the pack's ${vocabSize}-token vocabulary`;
  return null;
}

/** The fields a concept's use depends on. */
export interface ConceptFields {
  placeholder: string;
  hardTokenId: number;
  rank: number;
  alpha: number;
  blend: number;
}

/**
 * Every field problem of a concept as "field: phrase" sentences (empty when sound).
 * `vocab` is the pack's tokenizer (or just its size).
 */
export function conceptFieldProblems(c: ConceptFields, vocab?: ConceptVocabulary): string[] {
  const out: string[] = [];
  const add = (field: string, problem: string | null) => {
    if (problem) out.push(`${field} ${problem}`);
  };
  add('the placeholder', placeholderProblem(c.placeholder, vocab));
  const rp = rankProblem(c.rank);
  add('the rank', rp);
  add('alpha', alphaProblem(c.alpha, rp ? 1 : c.rank));
  add('blend', blendProblem(c.blend));
  if (vocab) add('the nearest token id', tokenIdProblem(c.hardTokenId, vocab.vocabSize));
  return out;
}
