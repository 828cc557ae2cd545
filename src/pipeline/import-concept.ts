// Other tools' LoRA and embedding files (read by storage/concept-foreign.ts) made into a
// concept for the loaded pack:
// - an embedding (k vectors) becomes v*; its placeholder is the word the user picks, else the
//   token the file names, else its trigger word, else the file name; C_h puts in each of the
//   k slots the vocabulary word nearest that vector (as personalize picks v_h);
// - a LoRA without an embedding gets a placeholder that is a plain word (default: the
//   trigger, else the file name) whose "v*" is that word's own token embeddings and whose
//   hard tokens are its own ids, so C = C_h = the prompt as written, and the blend mixes only
//   LoRA and no LoRA per block;
// - an embedding without a LoRA gets a zero LoRA (ΔW = 0).
// The blend defaults to 1, the look the file has in the tool it came from.
import { placeholderProblem } from '../storage/concept-limits.ts';
import type { ConceptData } from '../domain/types.ts';
import { ConceptFileError, MAX_EMBEDDING_VECTORS } from '../storage/concept-safetensors.ts';
import type { ForeignRead } from '../storage/concept-foreign.ts';
import { nearestTokens } from './nearest-tokens.ts';
import type { PackRuntime } from './pack-runtime.ts';

export interface ForeignConceptChoice {
  /** The word to write in prompts; default as described above. */
  placeholder?: string;
  /** Dual-path blend α (default 1: how other tools apply it). */
  blend?: number;
  /** How many nearest words to keep for display (default 8). */
  nearestK?: number;
}

/** A file name without folders and extension, as a placeholder word. */
export function fileStemWord(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.(safetensors|pt|bin|ckpt)$/i, '').trim() || 'concept';
}

export async function conceptFromForeign(
  rt: PackRuntime,
  reads: readonly ForeignRead[],
  choice: ForeignConceptChoice = {},
): Promise<ConceptData> {
  const loras = reads.filter((r) => r.lora);
  const embs = reads.filter((r) => r.embedding);
  if (loras.length === 0 && embs.length === 0)
    throw new ConceptFileError('not-a-concept', 'Nothing to import: no LoRA and no embedding.');
  if (loras.length > 1) {
    throw new ConceptFileError(
      'mixed-naming',
      `Import one LoRA at a time (got ${loras.map((r) => `“${r.fileName}”`).join(' and ')}); a concept has one.`,
    );
  }
  if (embs.length > 1) {
    throw new ConceptFileError(
      'mixed-naming',
      `Import one embedding at a time (got ${embs.map((r) => `“${r.fileName}”`).join(' and ')}); a concept has one placeholder.`,
    );
  }
  const lora = loras[0]?.lora ?? null;
  const emb = embs[0]?.embedding ?? null;
  const R = rt.manifest.architecture.lora.rank;
  const C = rt.tokenDim;
  const blend = choice.blend ?? 1;
  if (!(blend >= 0 && blend <= 1))
    throw new ConceptFileError('invalid-concept', `The blend must be between 0 and 1, not ${blend}.`);

  const source = embs[0] ?? loras[0];
  const placeholder =
    choice.placeholder ?? emb?.token ?? embs[0]?.trigger ?? loras[0]?.trigger ?? fileStemWord(source.fileName);
  // The rules every placeholder follows (concept-limits.ts). With an embedding, also not a
  // word the model knows; a LoRA alone keeps the word's own embedding (C = C_h), so a known
  // word is just the name of the style, not a new meaning for it.
  const problem = placeholderProblem(placeholder, emb ? rt.tokenizer : undefined);
  if (problem)
    throw new ConceptFileError(
      'invalid-concept',
      `The placeholder ${problem.startsWith('"') ? problem : `${JSON.stringify(placeholder)} ${problem}`}; choose another word.`,
      'placeholder',
    );

  let embedding: Float32Array;
  let hardIds: number[];
  let nearestWords: string[];
  if (emb) {
    embedding = emb.vectors;
    hardIds = [];
    nearestWords = [];
    for (let j = 0; j < emb.count; j++) {
      const near = await rt.engine.scopeAsync(async () =>
        nearestTokens(
          rt,
          rt.engine.tensor(emb.vectors.slice(j * C, (j + 1) * C), [C]),
          Math.max(1, choice.nearestK ?? 8),
        ),
      );
      hardIds.push(near.ids[0]);
      if (j === 0) nearestWords = near.words;
    }
  } else {
    hardIds = rt.tokenizer.encode(placeholder);
    if (hardIds.length === 0)
      throw new ConceptFileError(
        'invalid-concept',
        `The placeholder ${JSON.stringify(placeholder)} has no tokens; choose a word.`,
        'placeholder',
      );
    if (hardIds.length > MAX_EMBEDDING_VECTORS) {
      throw new ConceptFileError(
        'invalid-concept',
        `The placeholder ${JSON.stringify(placeholder)} is ${hardIds.length} tokens, over ${MAX_EMBEDDING_VECTORS}; choose a shorter word.`,
        'placeholder',
      );
    }
    embedding = new Float32Array(hardIds.length * C);
    for (const [j, id] of hardIds.entries()) embedding.set(await rt.tokenEmbedding(id), j * C);
    nearestWords = [placeholder];
  }

  const zeroLora = () =>
    rt.loraTargets.map((t) => ({
      module: t.module,
      A: new Float32Array(R * t.in),
      aShape: [R, t.in] as [number, number],
      B: new Float32Array(t.out * R),
      bShape: [t.out, R] as [number, number],
    }));
  return {
    placeholder,
    embedding,
    nearestWords,
    hardTokenId: hardIds[0],
    ...(hardIds.length > 1 ? { hardTokenIds: hardIds } : {}),
    rank: R,
    alpha: R,
    blend,
    lora: lora ? lora.lora : zeroLora(),
    lossCurve: [],
    packId: rt.manifest.name,
    packHash: rt.hash,
  };
}
