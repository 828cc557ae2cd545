// A concept as one .safetensors file that other tools can load (docs/concepts.md), and the strict
// reader that turns such a file back into ConceptData against the loaded pack.
//
// Names, 'peft' (the default; diffusers' `StableDiffusionPipeline.save_lora_weights` layout,
// checked against the real shared/data/reference/tiny-sd/lora-goldens.safetensors):
//   unet.<module>.lora_A.weight   F32 (r, in)
//   unet.<module>.lora_B.weight   F32 (out, r)
//   lora_ti.emb_params            F32 (1, C)   the textual-inversion vector v*
//   __metadata__.lora_adapter_metadata: the PEFT LoraConfig as JSON with "unet."-prefixed keys
//   (r, lora_alpha, target_modules …), which `load_lora_weights` turns into the LoraConfig.
//   __metadata__.start: encoder | untrained-encoder | class-word (then .class_word: the word):
//   where tuning began; optional, since files written before it was recorded lack it.
// Names, 'kohya' (kohya-ss sd-scripts / A1111 / ComfyUI):
//   lora_unet_<module, '.' → '_'>.lora_down.weight (r, in), .lora_up.weight (out, r), .alpha ()
//   bundle_emb.<placeholder, '.' → '_'>.string_to_param.*   (1, C)   A1111's embedding-in-LoRA
//
// Why the peft embedding is "lora_ti.emb_params" and not a bare "emb_params": diffusers'
// `load_lora_weights` refuses a file in which any key lacks the substring "lora"
// (`is_correct_format = all("lora" in key for key in state_dict.keys())` in
// loaders/lora_pipeline.py), so a bare "emb_params" would make the whole file unloadable
// there; keys outside "unet."/"text_encoder." are otherwise ignored by it. No name makes the
// file loadable by a textual-inversion loader directly — diffusers' `load_textual_inversion`
// and A1111 both want a safetensors TI file to hold exactly one tensor — so in diffusers:
//   pipe.load_lora_weights(path)
//   pipe.load_textual_inversion(load_file(path)["lora_ti.emb_params"], token=<placeholder>)
// The suffix keeps A1111/kohya's TI tensor name ("emb_params", what sd-scripts writes for a
// .safetensors embedding); a bare "emb_params" is accepted on import as well.
//
// Import treats the file as hostile: a 1 MiB header cap, a total size bound computed from the
// pack, only F32/F16/BF16, exactly the pack's LoRA modules with exact shapes, finite values
// within the f16 range, checked metadata, and the base pack hash equal to the loaded pack's.
// Every refusal is a ConceptFileError with a code and a message saying what to do.
import type { ConceptData, ConceptStart } from '../domain/types.ts';
import { f16BitsToF32, f32ToF16Bits } from '../engine/dtype.ts';
import {
  decodeFloat32,
  f32ToBf16Bits,
  parseSafetensors,
  SafetensorsError,
  writeSafetensors,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
  type SafetensorsTensorInput,
} from '../packs/safetensors.ts';
import { JsonSyntaxError, parseStrictJson, type JsonValue } from '../packs/strict-json.ts';
import { LORA_RANK, PLACEHOLDER_MAX_CHARS } from '../domain/limits.ts';
import {
  alphaProblem,
  blendProblem,
  placeholderProblem,
  rankProblem,
  tokenIdProblem,
  type ConceptVocabulary,
} from './concept-limits.ts';
import { BadInputError } from '../domain/errors.ts';

export const CONCEPT_FILE_FORMAT = 'likeness-concept/1';
/** Header cap for concept files: a few hundred tensor entries and the metadata fit in far less. */
export const CONCEPT_MAX_HEADER_BYTES = 1024 * 1024;
/** Absolute cap whatever the pack; the per-pack bound (largest legal file) is usually far lower. */
export const CONCEPT_MAX_FILE_BYTES = 512 * 1024 * 1024;
export const MAX_PLACEHOLDER_CHARS = PLACEHOLDER_MAX_CHARS;
export const MAX_NEAREST_WORDS = 64;
/** Most token vectors one placeholder may have (an imported multi-vector embedding); CLIP has 75 free slots. */
export const MAX_EMBEDDING_VECTORS = 32;
export const MAX_LOSS_CURVE = 100_000;
export const MAX_RANK = LORA_RANK.max;
/** Largest magnitude accepted in any tensor: the f16 range, so an f16 runtime cannot overflow on load. */
export const MAX_ABS_VALUE = 65504;

export const PEFT_EMBEDDING_KEY = 'lora_ti.emb_params';
/** A1111 / kohya's textual-inversion tensor name; accepted on import. */
export const TI_EMBEDDING_KEY = 'emb_params';

export type ConceptNaming = 'peft' | 'kohya';

export type ConceptFileErrorCode =
  | 'not-safetensors' // not a .safetensors file at all
  | 'truncated' // ends before its own header says it should
  | 'header-too-large'
  | 'too-large' // bigger than any concept for this pack can be
  | 'corrupt' // a safetensors header that does not hold together
  | 'not-a-concept' // a valid safetensors file without Likeness metadata (e.g. a plain LoRA)
  | 'newer-format' // a later likeness-concept version
  | 'metadata' // a metadata value missing or of the wrong type / range
  | 'wrong-pack' // made for another model pack
  | 'unknown-tensor'
  | 'missing-tensor'
  | 'mixed-naming' // both peft and kohya names, or two embeddings
  | 'dtype'
  | 'shape'
  | 'non-finite' // NaN / ±Inf / beyond the f16 range
  | 'inconsistent' // two places in the file disagree (alpha tensor vs metadata, PEFT config vs metadata)
  | 'text-encoder' // another tool's LoRA that also trains the text encoder (Likeness applies UNet LoRA only)
  | 'invalid-concept'; // export given data that would make a file import refuses

export class ConceptFileError extends BadInputError {
  constructor(
    readonly code: ConceptFileErrorCode,
    message: string,
    /** The tensor or metadata key concerned, where there is one. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConceptFileError';
  }
}

/** What import checks a file against: the loaded pack. `targets` is `loraTargets(unet config)`. */
export interface ConceptPackInfo {
  hash: string;
  id: string;
  /** Text-encoder hidden size C: the length of v*. */
  tokenDim: number;
  /** The tuning encoder's LoRA rank. */
  rank: number;
  targets: readonly { module: string; in: number; out: number }[];
  /**
   * The pack's tokenizer (or only its size): the nearest token id must be one of its ids and
   * the placeholder not one of its words (concept-limits.ts). Give it wherever the pack is loaded.
   */
  vocabulary?: ConceptVocabulary;
}

export interface ExportConceptOptions {
  naming?: ConceptNaming;
  /** Written as `created_at` (ISO 8601); default now. */
  createdAt?: Date | number;
  /** More `__metadata__` entries (e.g. the library's name, thumbnail); may not override the format's own keys. */
  extraMetadata?: Readonly<Record<string, string>>;
}

export interface ReadConcept {
  concept: ConceptData;
  naming: ConceptNaming;
  /** ISO 8601 as written. */
  createdAt: string;
  /** The whole `__metadata__`, including keys this reader does not interpret. */
  metadata: Readonly<Record<string, string>>;
}

/** The metadata keys this format defines (extraMetadata may not use them). */
export const CONCEPT_METADATA_KEYS = [
  'format',
  'base_pack_hash',
  'base_pack_id',
  'placeholder',
  'nearest_token_id',
  'nearest_token_ids',
  'nearest_words',
  'rank',
  'alpha',
  'blend',
  'loss_curve',
  'created_at',
  'lora_adapter_metadata',
  'start',
  'class_word',
] as const;

/** `start` metadata values: where tuning began (see ConceptStart). */
const START_VALUES = ['encoder', 'untrained-encoder', 'class-word'] as const;

function startMetadata(start: ConceptStart): Record<string, string> {
  if (start.kind === 'class-word') return { start: 'class-word', class_word: start.word };
  return { start: start.trained ? 'encoder' : 'untrained-encoder' };
}

/** kohya's module name: sd-scripts joins "lora_unet" and the diffusers path with '_' for every '.'. */
export const kohyaModuleName = (module: string): string => `lora_unet_${module.replaceAll('.', '_')}`;

/** The embedding's name in A1111's `bundle_emb.<name>.…` key: A1111 splits that key at dots. */
export const bundleEmbeddingName = (placeholder: string): string => placeholder.replaceAll('.', '_');
const bundleEmbeddingKey = (placeholder: string) => `bundle_emb.${bundleEmbeddingName(placeholder)}.string_to_param.*`;

// ------------------------------------------------------------------------------------------
// export

export function exportConcept(concept: ConceptData, options: ExportConceptOptions = {}): Uint8Array {
  const naming = options.naming ?? 'peft';
  if (naming !== 'peft' && naming !== 'kohya') {
    throw new ConceptFileError('invalid-concept', `Unknown naming ${JSON.stringify(naming)}: use "peft" or "kohya".`);
  }
  checkConceptForExport(concept);
  const { rank, alpha } = concept;

  const tensors: SafetensorsTensorInput[] = [];
  const embKey = naming === 'peft' ? PEFT_EMBEDDING_KEY : bundleEmbeddingKey(concept.placeholder);
  const vectors = concept.hardTokenIds?.length ?? 1;
  tensors.push({
    name: embKey,
    dtype: 'F32',
    shape: [vectors, concept.embedding.length / vectors],
    data: concept.embedding,
  });
  for (const l of concept.lora) {
    if (naming === 'peft') {
      tensors.push({ name: `unet.${l.module}.lora_A.weight`, dtype: 'F32', shape: l.aShape, data: l.A });
      tensors.push({ name: `unet.${l.module}.lora_B.weight`, dtype: 'F32', shape: l.bShape, data: l.B });
    } else {
      const k = kohyaModuleName(l.module);
      tensors.push({ name: `${k}.lora_down.weight`, dtype: 'F32', shape: l.aShape, data: l.A });
      tensors.push({ name: `${k}.lora_up.weight`, dtype: 'F32', shape: l.bShape, data: l.B });
      tensors.push({ name: `${k}.alpha`, dtype: 'F32', shape: [], data: Float32Array.of(alpha) });
    }
  }

  const created = options.createdAt ?? Date.now();
  const createdMs = created instanceof Date ? created.getTime() : created;
  if (!Number.isFinite(createdMs)) throw new ConceptFileError('invalid-concept', 'createdAt is not a valid date.');
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.extraMetadata ?? {})) {
    if ((CONCEPT_METADATA_KEYS as readonly string[]).includes(k)) {
      throw new ConceptFileError(
        'invalid-concept',
        `extraMetadata may not set ${JSON.stringify(k)}: the format writes it itself.`,
        k,
      );
    }
    if (typeof v !== 'string')
      throw new ConceptFileError('invalid-concept', `extraMetadata ${JSON.stringify(k)} must be a string.`, k);
    metadata[k] = v;
  }
  Object.assign(metadata, {
    format: CONCEPT_FILE_FORMAT,
    base_pack_hash: concept.packHash,
    base_pack_id: concept.packId,
    placeholder: concept.placeholder,
    nearest_token_id: String(concept.hardTokenId),
    ...(vectors > 1 ? { nearest_token_ids: JSON.stringify(concept.hardTokenIds) } : {}),
    nearest_words: JSON.stringify(concept.nearestWords),
    rank: String(rank),
    alpha: String(alpha),
    blend: String(concept.blend),
    loss_curve: JSON.stringify(concept.lossCurve),
    created_at: new Date(createdMs).toISOString(),
  });
  if (concept.start) Object.assign(metadata, startMetadata(concept.start));
  if (naming === 'peft') metadata.lora_adapter_metadata = peftAdapterMetadata(concept);
  const bytes = writeSafetensors(tensors, metadata);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true);
  if (headerLength > CONCEPT_MAX_HEADER_BYTES) {
    throw new ConceptFileError(
      'invalid-concept',
      `The concept's header would be ${headerLength} bytes, over the ${CONCEPT_MAX_HEADER_BYTES}-byte limit import enforces; shorten the extra metadata.`,
    );
  }
  return bytes;
}

// What diffusers' save_lora_weights writes under "lora_adapter_metadata": the adapter's PEFT
// LoraConfig, keys prefixed by the component ("unet."), sorted, 2-space indented. diffusers
// strips the prefix and calls LoraConfig(**config), so only LoraConfig fields may appear;
// these are the ones every PEFT version with diffusers' metadata support knows. Full module
// paths (matched exactly by PEFT) rather than leaf names, so that no module outside the file
// gets an adapter.
export function peftAdapterMetadata(concept: ConceptData): string {
  const config: Record<string, JsonLike> = {
    'unet.alpha_pattern': {},
    'unet.bias': 'none',
    'unet.fan_in_fan_out': false,
    'unet.lora_alpha': concept.alpha,
    'unet.lora_dropout': 0,
    'unet.peft_type': 'LORA',
    'unet.r': concept.rank,
    'unet.rank_pattern': {},
    'unet.target_modules': concept.lora.map((l) => l.module),
    'unet.use_dora': false,
    'unet.use_rslora': false,
  };
  // Keys are written in sorted order above, as diffusers' json.dumps(sort_keys=True) does.
  return JSON.stringify(config, null, 2);
}
type JsonLike = string | number | boolean | string[] | Record<string, never>;

function checkConceptForExport(c: ConceptData): void {
  const bad = (what: string, field?: string): never => {
    throw new ConceptFileError('invalid-concept', `Cannot export this concept: ${what}.`, field);
  };
  const text = (v: unknown, field: string, max: number): string => {
    if (typeof v !== 'string' || v.length === 0) return bad(`${field} is empty`, field);
    if (v.length > max) return bad(`${field} is over ${max} characters`, field);
    return v;
  };
  const phProblem = placeholderProblem(c.placeholder);
  if (phProblem) bad(`the placeholder ${phProblem}`, 'placeholder');
  text(c.packHash, 'packHash', 256);
  text(c.packId, 'packId', 256);
  const rp = rankProblem(c.rank);
  if (rp) bad(`rank ${rp}`, 'rank');
  const ap = alphaProblem(c.alpha, c.rank);
  if (ap) bad(`alpha ${ap}`, 'alpha');
  const bp = blendProblem(c.blend);
  if (bp) bad(`blend ${bp}`, 'blend');
  if (!Number.isSafeInteger(c.hardTokenId) || c.hardTokenId < 0 || c.hardTokenId > 0x7fffffff)
    bad(`nearest token id ${c.hardTokenId} is not a token id`, 'hardTokenId');
  if (
    !Array.isArray(c.nearestWords) ||
    c.nearestWords.length > MAX_NEAREST_WORDS ||
    !c.nearestWords.every((w) => typeof w === 'string' && w.length <= 100)
  ) {
    bad(`the nearest words are not a list of at most ${MAX_NEAREST_WORDS} short strings`, 'nearestWords');
  }
  if (
    !Array.isArray(c.lossCurve) ||
    c.lossCurve.length > MAX_LOSS_CURVE ||
    !c.lossCurve.every((x) => typeof x === 'number' && Number.isFinite(x))
  ) {
    bad(`the loss curve is not a list of at most ${MAX_LOSS_CURVE} finite numbers`, 'lossCurve');
  }
  if (c.start !== undefined) {
    if (c.start?.kind === 'class-word') {
      if (typeof c.start.word !== 'string' || !c.start.word || c.start.word.length > 100 || /\s/.test(c.start.word))
        bad(`the class word ${JSON.stringify(c.start.word)} is not one short word`, 'start');
    } else if (c.start?.kind !== 'encoder' || typeof c.start.trained !== 'boolean') {
      bad(`its start ${JSON.stringify(c.start)} is neither the encoder nor a class word`, 'start');
    }
  }
  if (!(c.embedding instanceof Float32Array) || c.embedding.length === 0) bad('the embedding is empty', 'embedding');
  const idsProblem = hardTokenIdsProblem(c.hardTokenIds, c.embedding.length);
  if (idsProblem) bad(`the nearest token ids ${idsProblem}`, 'hardTokenIds');
  if (!allFinite(c.embedding)) bad('the embedding holds NaN, infinite or out-of-range values', 'embedding');
  if (c.lora.length === 0) bad('it has no LoRA modules', 'lora');
  const seen = new Set<string>();
  for (const l of c.lora) {
    if (typeof l.module !== 'string' || !/^[A-Za-z0-9_.]+$/.test(l.module))
      bad(`LoRA module name ${JSON.stringify(l.module)} is not a module path`, 'lora');
    if (seen.has(l.module)) bad(`LoRA module ${l.module} appears twice`, l.module);
    seen.add(l.module);
    const [r, inDim] = l.aShape;
    const [outDim, r2] = l.bShape;
    if (
      l.aShape.length !== 2 ||
      l.bShape.length !== 2 ||
      r !== c.rank ||
      r2 !== c.rank ||
      !(inDim > 0) ||
      !(outDim > 0)
    ) {
      bad(
        `LoRA module ${l.module} has shapes A [${l.aShape}], B [${l.bShape}], not (${c.rank}, in) and (out, ${c.rank})`,
        l.module,
      );
    }
    if (l.A.length !== r * inDim || l.B.length !== outDim * r2)
      bad(`LoRA module ${l.module} holds the wrong number of values for its shapes`, l.module);
    if (!allFinite(l.A) || !allFinite(l.B))
      bad(`LoRA module ${l.module} holds NaN, infinite or out-of-range values`, l.module);
  }
}

// ------------------------------------------------------------------------------------------
// import

/** Reads a concept file for `pack`, or throws ConceptFileError saying what is wrong. */
export function importConcept(bytes: Uint8Array, pack: ConceptPackInfo): ConceptData {
  return readConceptFile(bytes, pack).concept;
}

/** importConcept plus the naming found, the creation date and the raw metadata. */
export function readConceptFile(bytes: Uint8Array, pack: ConceptPackInfo): ReadConcept {
  const file = parseFile(bytes, pack);
  const meta = file.metadata;
  const m = readMetadata(meta, pack);

  // Every tensor name this pack allows, in both namings, each mapped to what it is.
  type Role =
    | { kind: 'A' | 'B' | 'alpha'; naming: ConceptNaming; target: number }
    | { kind: 'embedding'; naming: ConceptNaming | null };
  const allowed = new Map<string, Role>();
  pack.targets.forEach((t, i) => {
    const k = kohyaModuleName(t.module);
    allowed.set(`unet.${t.module}.lora_A.weight`, { kind: 'A', naming: 'peft', target: i });
    allowed.set(`unet.${t.module}.lora_B.weight`, { kind: 'B', naming: 'peft', target: i });
    allowed.set(`${k}.lora_down.weight`, { kind: 'A', naming: 'kohya', target: i });
    allowed.set(`${k}.lora_up.weight`, { kind: 'B', naming: 'kohya', target: i });
    allowed.set(`${k}.alpha`, { kind: 'alpha', naming: 'kohya', target: i });
  });
  allowed.set(PEFT_EMBEDDING_KEY, { kind: 'embedding', naming: 'peft' });
  allowed.set(TI_EMBEDDING_KEY, { kind: 'embedding', naming: null });
  allowed.set(bundleEmbeddingKey(m.placeholder), { kind: 'embedding', naming: 'kohya' });

  const unknown = file.tensors.filter((t) => !allowed.has(t.name));
  if (unknown.length > 0) {
    const names = unknown
      .slice(0, 3)
      .map((t) => JSON.stringify(t.name))
      .join(', ');
    const looksLikeLora = unknown.some((t) => /lora|^unet\./.test(t.name));
    throw new ConceptFileError(
      'unknown-tensor',
      `This concept file holds ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} that ${pack.id} has no place for (${names}${unknown.length > 3 ? ', …' : ''}). ` +
        (looksLikeLora
          ? 'It targets layers this model pack does not have: it was made for a different model, or it is damaged. Use it with the pack it was made for, or personalize again here.'
          : 'It may have been edited or made by another tool; export it from Likeness again.'),
      unknown[0].name,
    );
  }

  const namings = new Set<ConceptNaming>();
  for (const t of file.tensors) {
    const role = allowed.get(t.name)!;
    if (role.naming) namings.add(role.naming);
  }
  if (namings.size > 1) {
    throw new ConceptFileError(
      'mixed-naming',
      'This concept file mixes diffusers/PEFT tensor names (unet.….lora_A) with kohya names (lora_unet_…lora_down), so it is not clear which to use. Export it again with one naming.',
    );
  }
  const naming: ConceptNaming = namings.has('kohya') ? 'kohya' : 'peft';

  const r = m.rank;
  const A: (Float32Array | null)[] = pack.targets.map(() => null);
  const B: (Float32Array | null)[] = pack.targets.map(() => null);
  const alphaSeen: boolean[] = pack.targets.map(() => false);
  let embedding: Float32Array | null = null;
  let embeddingName = '';
  for (const t of file.tensors) {
    const role = allowed.get(t.name)!;
    checkDType(t);
    if (role.kind === 'embedding') {
      if (embedding) {
        throw new ConceptFileError(
          'mixed-naming',
          `This concept file holds two embeddings (${JSON.stringify(embeddingName)} and ${JSON.stringify(t.name)}); a concept has one. Export it again from Likeness.`,
          t.name,
        );
      }
      const k = m.hardTokenIds?.length ?? 1;
      const ok =
        (t.shape.length === 2 && t.shape[0] === k && t.shape[1] === pack.tokenDim) ||
        (k === 1 && t.shape.length === 1 && t.shape[0] === pack.tokenDim);
      if (!ok) {
        throw new ConceptFileError(
          'shape',
          `The concept's embedding ${JSON.stringify(t.name)} has shape [${t.shape.join(', ')}], but ${pack.id} needs ${k > 1 ? `${k} vectors` : 'one vector'} of ${pack.tokenDim} values ([${k}, ${pack.tokenDim}]). The file was made for a different model or is damaged: use it with the pack it was made for, or export it again from Likeness.`,
          t.name,
        );
      }
      embedding = readValues(file, t);
      embeddingName = t.name;
      continue;
    }
    const target = pack.targets[role.target];
    if (role.kind === 'alpha') {
      if (t.shape.length > 1 || t.numel !== 1) {
        throw new ConceptFileError(
          'shape',
          `${JSON.stringify(t.name)} has shape [${t.shape.join(', ')}]; a LoRA alpha is a single number (shape []). The file is damaged; export it again.`,
          t.name,
        );
      }
      const value = readValues(file, t)[0];
      if (value !== roundTo(t.dtype, m.alpha)) {
        throw new ConceptFileError(
          'inconsistent',
          `${JSON.stringify(t.name)} says alpha ${value} but the file's metadata says ${m.alpha}; one of them was changed. Export the concept again from Likeness.`,
          t.name,
        );
      }
      alphaSeen[role.target] = true;
      continue;
    }
    const want = role.kind === 'A' ? [r, target.in] : [target.out, r];
    if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      const which = role.kind === 'A' ? `(rank, in) = (${r}, ${target.in})` : `(out, rank) = (${target.out}, ${r})`;
      throw new ConceptFileError(
        'shape',
        `LoRA tensor ${JSON.stringify(t.name)} has shape [${t.shape.join(', ')}], but ${pack.id} with the file's rank ${r} needs ${which}. The file was made for a different model or is damaged: use it with the pack it was made for, or export it again from Likeness.`,
        t.name,
      );
    }
    (role.kind === 'A' ? A : B)[role.target] = readValues(file, t);
  }

  const missing: string[] = [];
  pack.targets.forEach((t, i) => {
    const k = kohyaModuleName(t.module);
    if (!A[i]) missing.push(naming === 'peft' ? `unet.${t.module}.lora_A.weight` : `${k}.lora_down.weight`);
    if (!B[i]) missing.push(naming === 'peft' ? `unet.${t.module}.lora_B.weight` : `${k}.lora_up.weight`);
    if (naming === 'kohya' && !alphaSeen[i]) missing.push(`${k}.alpha`);
  });
  if (!embedding) missing.unshift(naming === 'peft' ? PEFT_EMBEDDING_KEY : bundleEmbeddingKey(m.placeholder));
  if (missing.length > 0) {
    throw new ConceptFileError(
      'missing-tensor',
      `This concept file lacks ${missing.length} tensor${missing.length > 1 ? 's' : ''} ${pack.id} needs (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}). It is incomplete or was made for a different model; export it again from Likeness.`,
      missing[0],
    );
  }

  const concept: ConceptData = {
    placeholder: m.placeholder,
    embedding: embedding!,
    nearestWords: m.nearestWords,
    hardTokenId: m.hardTokenId,
    ...(m.hardTokenIds ? { hardTokenIds: m.hardTokenIds } : {}),
    rank: r,
    alpha: m.alpha,
    blend: m.blend,
    lora: pack.targets.map((t, i) => ({ module: t.module, A: A[i]!, aShape: [r, t.in], B: B[i]!, bShape: [t.out, r] })),
    lossCurve: m.lossCurve,
    packId: m.packId,
    packHash: m.packHash,
    ...(m.start ? { start: m.start } : {}),
  };
  return { concept, naming, createdAt: m.createdAt, metadata: meta };
}

/** The largest file a concept for `pack` can be: a full header and every tensor in F32. */
export function maxConceptFileBytes(pack: ConceptPackInfo): number {
  let values = MAX_EMBEDDING_VECTORS * pack.tokenDim;
  for (const t of pack.targets) values += pack.rank * (t.in + t.out) + 1;
  return Math.min(CONCEPT_MAX_FILE_BYTES, 8 + CONCEPT_MAX_HEADER_BYTES + 4 * values);
}

/**
 * The refusal of a `size`-byte file as a concept for `pack` when it is larger than any can be,
 * else null: callers holding a File check this before reading it.
 */
export function conceptFileSizeError(size: number, pack: ConceptPackInfo): ConceptFileError | null {
  const limit = maxConceptFileBytes(pack);
  if (size <= limit) return null;
  return new ConceptFileError(
    'too-large',
    `The file is ${size} bytes, more than any concept for ${pack.id} can be (${limit} bytes). It is not a Likeness concept for this pack; choose the concept file itself, not a model.`,
  );
}

function parseFile(bytes: Uint8Array, pack: ConceptPackInfo): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('importConcept: bytes must be a Uint8Array');
  const notSafetensors = () =>
    new ConceptFileError(
      'not-safetensors',
      'This is not a .safetensors file, so it cannot be a Likeness concept. Choose a concept file exported by Likeness (it ends in .safetensors).',
    );
  if (bytes.length === 0)
    throw new ConceptFileError('not-safetensors', 'The file is empty. Choose a concept file exported by Likeness.');
  if (bytes.length < 8) throw notSafetensors();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = dv.getUint32(4, true) * 2 ** 32 + dv.getUint32(0, true);
  if (n > CONCEPT_MAX_HEADER_BYTES) {
    // A length field past the end of the file is not a header at all.
    if (n > bytes.length - 8) throw notSafetensors();
    throw new ConceptFileError(
      'header-too-large',
      `The file's header is ${n} bytes, over the ${CONCEPT_MAX_HEADER_BYTES}-byte limit for concept files (a real one needs a few kilobytes). It is not a Likeness concept, or it was tampered with; choose a concept file exported by Likeness.`,
    );
  }
  if (n === 0 || bytes.length === 8 || bytes[8] !== 0x7b) throw notSafetensors();
  if (n > bytes.length - 8) {
    throw new ConceptFileError(
      'truncated',
      `The file ends early: its header alone should be ${n} bytes but only ${bytes.length - 8} follow. It was probably cut off while downloading or copying; get the file again.`,
    );
  }
  const tooLarge = conceptFileSizeError(bytes.length, pack);
  if (tooLarge) throw tooLarge;
  try {
    return parseSafetensors(bytes, { maxHeaderBytes: CONCEPT_MAX_HEADER_BYTES });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    const detail = e.message.replace(/^safetensors: /, '');
    switch (e.code) {
      case 'too-short':
      case 'need-more-bytes':
      case 'header-beyond-file':
      case 'out-of-bounds':
        throw new ConceptFileError(
          'truncated',
          `The file ends early (${detail}). It was probably cut off while downloading or copying; get the file again.`,
          e.tensor,
          { cause: e },
        );
      case 'header-too-large':
        throw new ConceptFileError(
          'header-too-large',
          `The file's header is too large (${detail}). It is not a Likeness concept, or it was tampered with; choose a concept file exported by Likeness.`,
          e.tensor,
          { cause: e },
        );
      case 'header-encoding':
      case 'header-json':
        throw new ConceptFileError(
          'corrupt',
          `The file's header is damaged (${detail}). Get the file again or export it again from Likeness.`,
          e.tensor,
          { cause: e },
        );
      default:
        throw new ConceptFileError(
          'corrupt',
          `The file is damaged (${detail}). Get the file again or export it again from Likeness.`,
          e.tensor,
          { cause: e },
        );
    }
  }
}

interface Meta {
  placeholder: string;
  packHash: string;
  packId: string;
  hardTokenId: number;
  hardTokenIds: number[] | null;
  nearestWords: string[];
  rank: number;
  alpha: number;
  blend: number;
  lossCurve: number[];
  createdAt: string;
  start: ConceptStart | undefined;
}

const DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const UNSIGNED = /^(?:0|[1-9][0-9]{0,15})$/;
// ISO 8601 as Date#toISOString writes it (and the common second-precision / offset forms).
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

function readMetadata(meta: Readonly<Record<string, string>>, pack: ConceptPackInfo): Meta {
  const format = meta.format;
  if (format !== CONCEPT_FILE_FORMAT) {
    if (typeof format === 'string' && format.startsWith('likeness-concept/')) {
      throw new ConceptFileError(
        'newer-format',
        `This concept file has format ${JSON.stringify(format.slice(0, 40))}, which this version of Likeness cannot read (it reads ${CONCEPT_FILE_FORMAT}). Reload the page to get the newest version.`,
        'format',
      );
    }
    throw new ConceptFileError(
      'not-a-concept',
      'This .safetensors file has no Likeness concept metadata (a plain LoRA, a textual-inversion embedding or a model is not a concept). Choose a concept file exported by Likeness.',
      'format',
    );
  }
  const bad = (key: string, what: string): never => {
    throw new ConceptFileError(
      'metadata',
      `The concept file's metadata "${key}" ${what}. The file was edited or damaged; export it again from Likeness.`,
      key,
    );
  };
  const text = (key: string, max: number): string => {
    const v = meta[key];
    if (typeof v !== 'string') return bad(key, 'is missing');
    if (v.length === 0) return bad(key, 'is empty');
    if (v.length > max) return bad(key, `is longer than ${max} characters`);
    return v;
  };
  const decimal = (key: string): number => {
    const s = text(key, 64);
    const v = DECIMAL.test(s) ? Number(s) : NaN;
    if (!Number.isFinite(v)) bad(key, `is ${JSON.stringify(s.slice(0, 24))}, not a number`);
    return v;
  };
  const json = (key: string, max: number): JsonValue => {
    const s = text(key, max);
    try {
      return parseStrictJson(s, { maxDepth: 2 });
    } catch (e) {
      if (e instanceof JsonSyntaxError) return bad(key, `is not valid JSON (${e.message})`);
      throw e;
    }
  };

  const packHash = text('base_pack_hash', 256);
  const packId = text('base_pack_id', 256);
  if (packHash !== pack.hash) {
    throw new ConceptFileError(
      'wrong-pack',
      `This concept was made for the model pack "${clip(packId)}" (${clip(packHash, 16)}…), but the loaded pack is "${pack.id}" (${pack.hash.slice(0, 16)}…). A concept only works with the pack it was made from: load "${clip(packId)}" to use it, or personalize again with "${pack.id}".`,
      'base_pack_hash',
    );
  }

  const placeholder = meta.placeholder;
  if (typeof placeholder !== 'string') bad('placeholder', 'is missing');
  const problem = placeholderProblem(placeholder, pack.vocabulary);
  if (problem) bad('placeholder', problem);

  const rankText = text('rank', 16);
  if (!UNSIGNED.test(rankText)) bad('rank', `is ${JSON.stringify(rankText)}, not a whole number`);
  const rank = Number(rankText);
  if (rank < 1 || rank > MAX_RANK) bad('rank', `is ${rank}, outside [1, ${MAX_RANK}]`);
  if (rank !== pack.rank) {
    throw new ConceptFileError(
      'wrong-pack',
      `This concept's LoRA has rank ${rank}, but ${pack.id} makes and reads rank ${pack.rank}; it was not made with this pack. Personalize again with "${pack.id}".`,
      'rank',
    );
  }
  const alpha = decimal('alpha');
  const alphaBad = alphaProblem(alpha, rank);
  if (alphaBad) bad('alpha', alphaBad);
  const blend = decimal('blend');
  const blendBad = blendProblem(blend);
  if (blendBad) bad('blend', blendBad);

  const tokenText = text('nearest_token_id', 16);
  if (!UNSIGNED.test(tokenText) || Number(tokenText) > 0x7fffffff)
    bad('nearest_token_id', `is ${JSON.stringify(tokenText)}, not a token id`);
  const hardTokenId = Number(tokenText);
  const hardTokenIds = readNearestTokenIds(meta);
  const idBad = pack.vocabulary ? tokenIdProblem(hardTokenId, pack.vocabulary.vocabSize) : null;
  if (idBad) bad('nearest_token_id', idBad);

  const words = json('nearest_words', MAX_NEAREST_WORDS * 700);
  if (
    !Array.isArray(words) ||
    words.length > MAX_NEAREST_WORDS ||
    !words.every((w) => typeof w === 'string' && w.length <= 100)
  ) {
    bad('nearest_words', `is not a list of at most ${MAX_NEAREST_WORDS} words`);
  }
  const curve = json('loss_curve', MAX_LOSS_CURVE * 32);
  if (
    !Array.isArray(curve) ||
    curve.length > MAX_LOSS_CURVE ||
    !curve.every((x) => typeof x === 'number' && Number.isFinite(x))
  ) {
    bad('loss_curve', `is not a list of at most ${MAX_LOSS_CURVE} finite numbers`);
  }
  const createdAt = text('created_at', 40);
  if (!ISO_DATE.test(createdAt) || !Number.isFinite(Date.parse(createdAt)))
    bad('created_at', `is ${JSON.stringify(createdAt)}, not an ISO 8601 date`);

  // A PEFT LoraConfig that disagrees with the concept's own rank/alpha would make diffusers
  // apply a different scale than Likeness: refuse the disagreement rather than pick one.
  if (meta.lora_adapter_metadata !== undefined) {
    let config: JsonValue;
    try {
      config = parseStrictJson(text('lora_adapter_metadata', CONCEPT_MAX_HEADER_BYTES), { maxDepth: 8 });
    } catch (e) {
      if (e instanceof JsonSyntaxError) bad('lora_adapter_metadata', `is not valid JSON (${e.message})`);
      throw e;
    }
    if (!(config instanceof Map)) bad('lora_adapter_metadata', 'is not a JSON object');
    const cfg = config as Map<string, JsonValue>;
    const disagree = (key: string, want: number) => {
      const v = cfg.get(key);
      if (v !== undefined && v !== want) {
        throw new ConceptFileError(
          'inconsistent',
          `The file's PEFT config says ${key.slice(5)} = ${JSON.stringify(v)} but its concept metadata says ${want}; one of them was changed. Export the concept again from Likeness.`,
          'lora_adapter_metadata',
        );
      }
    };
    disagree('unet.r', rank);
    disagree('unet.lora_alpha', alpha);
  }

  // Where tuning started: optional (older files, other tools); when present, exact.
  let start: ConceptStart | undefined;
  if (meta.start !== undefined) {
    const kind = text('start', 32);
    if (!(START_VALUES as readonly string[]).includes(kind))
      bad('start', `is ${JSON.stringify(kind)}, not one of ${START_VALUES.join(', ')}`);
    if (kind === 'class-word') {
      const word = text('class_word', 100);
      if (/\s/.test(word)) bad('class_word', 'is not one word');
      start = { kind: 'class-word', word };
    } else {
      if (meta.class_word !== undefined) bad('class_word', `is set but the start is ${JSON.stringify(kind)}`);
      start = { kind: 'encoder', trained: kind === 'encoder' };
    }
  } else if (meta.class_word !== undefined) bad('start', 'is missing but class_word is set');

  return {
    placeholder,
    packHash,
    packId,
    hardTokenId,
    hardTokenIds,
    nearestWords: words as string[],
    rank,
    alpha,
    blend,
    lossCurve: curve as number[],
    createdAt,
    start,
  };
}

/** `nearest_token_ids` (present only for a k-vector placeholder, k ≥ 2): k token ids. */
function readNearestTokenIds(meta: Readonly<Record<string, string>>): number[] | null {
  const text = meta.nearest_token_ids;
  if (text === undefined) return null;
  const bad = (what: string): never => {
    throw new ConceptFileError(
      'metadata',
      `The concept file's metadata "nearest_token_ids" ${what}. The file was edited or damaged; export it again from Likeness.`,
      'nearest_token_ids',
    );
  };
  if (text.length > MAX_EMBEDDING_VECTORS * 12 + 2) bad('is too long');
  let v: JsonValue;
  try {
    v = parseStrictJson(text, { maxDepth: 1 });
  } catch (e) {
    if (e instanceof JsonSyntaxError) return bad(`is not valid JSON (${e.message})`);
    throw e;
  }
  const problem = hardTokenIdsProblem(v, null);
  if (problem) bad(problem);
  return v as number[];
}

/** Why a k-vector placeholder's hard token ids are unusable (undefined is fine: one vector), or null. */
function hardTokenIdsProblem(ids: unknown, embeddingLength: number | null): string | null {
  if (ids === undefined) return null;
  if (!Array.isArray(ids) || ids.length < 2 || ids.length > MAX_EMBEDDING_VECTORS)
    return `are not a list of 2 to ${MAX_EMBEDDING_VECTORS} token ids`;
  if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0 && id <= 0x7fffffff))
    return 'hold a value that is not a token id';
  if (embeddingLength !== null && embeddingLength % ids.length !== 0)
    return `are ${ids.length}, which does not divide the embedding's ${embeddingLength} values`;
  return null;
}

const FLOAT_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16'];

function checkDType(t: SafetensorsTensorInfo): void {
  if (!FLOAT_DTYPES.includes(t.dtype)) {
    throw new ConceptFileError(
      'dtype',
      `Tensor ${JSON.stringify(t.name)} is stored as ${t.dtype}; concept tensors must be F32, F16 or BF16. The file was not made by Likeness or is damaged; export it again from Likeness.`,
      t.name,
    );
  }
}

function readValues(file: SafetensorsFile, t: SafetensorsTensorInfo): Float32Array {
  const values = decodeFloat32(t.dtype, file.rawBytes(t.name), t.name);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(Math.abs(v) <= MAX_ABS_VALUE)) {
      throw new ConceptFileError(
        'non-finite',
        `Tensor ${JSON.stringify(t.name)} holds ${Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? `${v}, beyond ±${MAX_ABS_VALUE}` : 'an infinite value'} at element ${i}: the concept is broken (training diverged or the file is damaged) and would ruin every image. Personalize again.`,
        t.name,
      );
    }
  }
  return values;
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]) <= MAX_ABS_VALUE)) return false;
  return true;
}

/** `x` as stored in `dtype` and read back. */
function roundTo(dtype: SafetensorsDType, x: number): number {
  if (dtype === 'F16') return f16BitsToF32(f32ToF16Bits(x));
  if (dtype === 'BF16') return new Float32Array(new Uint32Array([f32ToBf16Bits(x) << 16]).buffer)[0];
  return Math.fround(x);
}

const clip = (s: string, n = 60) => (s.length > n ? s.slice(0, n) : s);
