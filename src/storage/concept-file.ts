// Concept files: a concept as one .safetensors file other tools can load (DESIGN §5).
//
// PEFT / diffusers naming (the default):
//   unet.<module>.lora_A.weight   (r, in)      unet.<module>.lora_B.weight   (out, r)
//   emb_params                    (1, dim)     — the textual-inversion vector v*
// kohya / A1111 naming (for other tools):
//   lora_unet_<module with _>.lora_down.weight (r, in), .lora_up.weight (out, r), .alpha ()
//   bundle_emb.<placeholder>.string_to_param.*  (1, dim)
// `__metadata__` carries format, base pack id + hash, placeholder, nearest words and token,
// rank, alpha, blend, name, dates, loss curve, settings and a small PNG thumbnail (base64).
//
// Import treats the file as hostile: a bounded header, only the tensor names above, float
// dtypes, 2-D shapes agreeing with the rank, finite values, bounded metadata.
import {
  parseSafetensors,
  SafetensorsError,
  writeSafetensors,
  type SafetensorsTensorInput,
} from '../packs/safetensors.ts';
import { readImageHeader } from '../ui/image-header.ts';
import {
  cleanName,
  MAX_PLACEHOLDER_LENGTH,
  recordProblems,
  type ConceptRecord,
  type ConceptSettings,
} from './concept-record.ts';
import { storageError } from './storage-error.ts';

export const CONCEPT_FORMAT = 'likeness-concept/1';
export const MAX_CONCEPT_FILE_BYTES = 256 * 1024 * 1024;
const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const MAX_THUMBNAIL_BYTES = 512 * 1024;
const MAX_THUMBNAIL_SIDE = 512;

export type ConceptNaming = 'peft' | 'kohya';

const kohyaModule = (module: string) => `lora_unet_${module.replaceAll('.', '_')}`;

// The modules LoRA targets here: to_q/k/v/out.0 of attn1/attn2 in every transformer block.
const KOHYA_TARGET =
  /^lora_unet_(?:(down_blocks|up_blocks)_(\d+)|(mid_block))_attentions_(\d+)_transformer_blocks_(\d+)_(attn[12])_(to_q|to_k|to_v|to_out_0)$/;

function moduleFromKohya(stem: string): string | null {
  const m = KOHYA_TARGET.exec(stem);
  if (!m) return null;
  const [, blocks, blockIndex, mid, attention, transformer, attn, proj] = m;
  const head = mid ? 'mid_block' : `${blocks}.${blockIndex}`;
  return `${head}.attentions.${attention}.transformer_blocks.${transformer}.${attn}.${proj === 'to_out_0' ? 'to_out.0' : proj}`;
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A file name for the export: the concept's name made safe, plus the naming. */
export function conceptFileName(record: Pick<ConceptRecord, 'name'>, naming: ConceptNaming = 'peft'): string {
  const stem =
    record.name
      .replace(/[^\p{L}\p{N}_-]+/gu, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'concept';
  return `${stem}${naming === 'kohya' ? '.kohya' : ''}.safetensors`;
}

export function exportConceptFile(record: ConceptRecord, naming: ConceptNaming = 'peft'): Uint8Array {
  const tensors: SafetensorsTensorInput[] = [];
  const embName = naming === 'peft' ? 'emb_params' : `bundle_emb.${record.placeholder}.string_to_param.*`;
  tensors.push({ name: embName, dtype: 'F32', shape: [1, record.embedding.length], data: record.embedding });
  for (const l of record.lora) {
    if (naming === 'peft') {
      tensors.push({ name: `unet.${l.module}.lora_A.weight`, dtype: 'F32', shape: l.aShape, data: l.A });
      tensors.push({ name: `unet.${l.module}.lora_B.weight`, dtype: 'F32', shape: l.bShape, data: l.B });
    } else {
      const k = kohyaModule(l.module);
      tensors.push({ name: `${k}.lora_down.weight`, dtype: 'F32', shape: l.aShape, data: l.A });
      tensors.push({ name: `${k}.lora_up.weight`, dtype: 'F32', shape: l.bShape, data: l.B });
      tensors.push({ name: `${k}.alpha`, dtype: 'F32', shape: [], data: Float32Array.of(record.alpha) });
    }
  }
  const metadata: Record<string, string> = {
    format: CONCEPT_FORMAT,
    naming,
    name: record.name,
    placeholder: record.placeholder,
    nearest_words: JSON.stringify(record.nearestWords),
    hard_token_id: String(record.hardTokenId),
    rank: String(record.rank),
    alpha: String(record.alpha),
    blend: String(record.blend),
    base_pack_id: record.packId,
    base_pack_hash: record.packHash,
    created_at: new Date(record.createdAt).toISOString(),
    loss_curve: JSON.stringify(record.lossCurve),
    settings: JSON.stringify(record.settings),
    // Other tools' metadata conventions (kohya's ss_* keys, A1111's modelspec) are not
    // needed to load the tensors; these are what a Likeness import needs.
  };
  if (record.thumbnail.length > 0 && record.thumbnail.length <= MAX_THUMBNAIL_BYTES) {
    metadata.thumbnail_png = toBase64(record.thumbnail);
  }
  return writeSafetensors(tensors, metadata);
}

export interface ImportedConcept {
  record: ConceptRecord;
  /** Things the user should know that do not stop the import (e.g. made for another pack). */
  warnings: string[];
}

/**
 * Reads a concept file into a new record (fresh id). `currentPack`, when a pack is loaded,
 * adds a warning when the file was made for another one.
 */
export function importConceptFile(
  bytes: Uint8Array,
  fileName: string,
  options: { newId: () => string; now?: number; currentPack?: { id: string; hash: string } | null },
): ImportedConcept {
  const bad = (why: string): never => {
    throw storageError('bad-file', `“${fileName}” is not a usable concept file: ${why}.`);
  };
  if (bytes.length > MAX_CONCEPT_FILE_BYTES)
    bad(`it is ${bytes.length} bytes, over the ${MAX_CONCEPT_FILE_BYTES}-byte limit`);
  let file: ReturnType<typeof parseSafetensors>;
  try {
    file = parseSafetensors(bytes, { maxHeaderBytes: MAX_HEADER_BYTES });
  } catch (err) {
    if (err instanceof SafetensorsError) return bad(err.message.replace(/^safetensors: /, ''));
    throw err;
  }
  const meta = file.metadata;
  if (meta.format !== CONCEPT_FORMAT) {
    bad(
      meta.format
        ? `its format is ${JSON.stringify(meta.format)}, not ${CONCEPT_FORMAT}`
        : 'it has no Likeness concept metadata',
    );
  }
  const text = (key: string, max: number): string => {
    const v = meta[key];
    if (typeof v !== 'string') return bad(`metadata “${key}” is missing`);
    if (v.length > max) return bad(`metadata “${key}” is longer than ${max} characters`);
    return v;
  };
  const number = (key: string): number => {
    const v = Number(text(key, 40));
    if (!Number.isFinite(v)) bad(`metadata “${key}” is not a number`);
    return v;
  };
  const json = <T>(key: string, max: number, check: (v: unknown) => v is T): T => {
    let v: unknown;
    try {
      v = JSON.parse(text(key, max));
    } catch {
      return bad(`metadata “${key}” is not valid JSON`);
    }
    return check(v) ? v : bad(`metadata “${key}” has the wrong shape`);
  };
  const isStringList = (v: unknown): v is string[] =>
    Array.isArray(v) && v.length <= 64 && v.every((s) => typeof s === 'string' && s.length <= 100);
  const isNumberList = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length <= 100_000 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  const isSettings = (v: unknown): v is ConceptSettings =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as ConceptSettings).steps === 'number' &&
    typeof (v as ConceptSettings).seed === 'number';

  const placeholder = text('placeholder', MAX_PLACEHOLDER_LENGTH);
  const rank = number('rank');
  const alpha = number('alpha');
  const naming = meta.naming === 'kohya' ? 'kohya' : 'peft';

  // Tensors, strictly by name.
  let embedding: Float32Array | null = null;
  const pairs = new Map<
    string,
    { A?: { data: Float32Array; shape: number[] }; B?: { data: Float32Array; shape: number[] } }
  >();
  const float = (name: string): { data: Float32Array; shape: number[] } => {
    const info = file.info(name);
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16')
      bad(`tensor “${name}” has dtype ${info.dtype}, not a float`);
    const data = file.float32(name);
    if (!data.every(Number.isFinite)) bad(`tensor “${name}” holds non-finite numbers`);
    return { data, shape: [...info.shape] };
  };
  const slot = (module: string) => {
    let s = pairs.get(module);
    if (!s) pairs.set(module, (s = {}));
    return s;
  };
  for (const name of file.names()) {
    let m: RegExpExecArray | null;
    if (naming === 'peft' && name === 'emb_params') embedding = float(name).data;
    else if (naming === 'kohya' && name === `bundle_emb.${placeholder}.string_to_param.*`) embedding = float(name).data;
    else if (naming === 'peft' && (m = /^unet\.(.+)\.lora_([AB])\.weight$/.exec(name)))
      slot(m[1])[m[2] as 'A' | 'B'] = float(name);
    else if (naming === 'kohya' && (m = /^(lora_unet_\w+)\.(lora_down|lora_up|alpha)(?:\.weight)?$/.exec(name))) {
      const module = moduleFromKohya(m[1]) ?? bad(`tensor “${name}” is not a LoRA target this app knows`);
      if (m[2] === 'alpha') {
        const a = float(name).data;
        if (a.length !== 1 || Math.abs(a[0] - alpha) > 1e-6 * Math.max(1, Math.abs(alpha)))
          bad(`tensor “${name}” disagrees with the alpha in the metadata`);
      } else slot(module)[m[2] === 'lora_down' ? 'A' : 'B'] = float(name);
    } else bad(`it holds an unexpected tensor “${name}”`);
  }
  if (!embedding) return bad('it has no word embedding');
  const lora: ConceptRecord['lora'] = [];
  for (const [module, { A, B }] of pairs) {
    if (!A || !B) return bad(`LoRA module “${module}” lacks its ${A ? 'B (up)' : 'A (down)'} matrix`);
    if (A.shape.length !== 2 || B.shape.length !== 2) return bad(`LoRA module “${module}” is not made of matrices`);
    lora.push({ module, A: A.data, aShape: [A.shape[0], A.shape[1]], B: B.data, bShape: [B.shape[0], B.shape[1]] });
  }
  lora.sort((a, b) => (a.module < b.module ? -1 : a.module > b.module ? 1 : 0));

  let thumbnail: Uint8Array = new Uint8Array(0);
  if (meta.thumbnail_png !== undefined) {
    try {
      thumbnail = fromBase64(text('thumbnail_png', Math.ceil((MAX_THUMBNAIL_BYTES * 4) / 3) + 4));
    } catch {
      bad('its thumbnail is not valid base64');
    }
    const h = readImageHeader(thumbnail);
    if (
      !h.ok ||
      h.header.format !== 'png' ||
      h.header.width > MAX_THUMBNAIL_SIDE ||
      h.header.height > MAX_THUMBNAIL_SIDE
    ) {
      bad('its thumbnail is not a small PNG');
    }
  }

  const created = Date.parse(meta.created_at ?? '');
  const now = options.now ?? Date.now();
  const record: ConceptRecord = {
    id: options.newId(),
    name: cleanName(meta.name ?? '') ?? cleanName(fileName.replace(/\.safetensors$/i, '')) ?? 'Imported concept',
    placeholder,
    embedding,
    nearestWords: json('nearest_words', 10_000, isStringList),
    hardTokenId: number('hard_token_id'),
    rank,
    alpha,
    blend: number('blend'),
    lora,
    lossCurve: json('loss_curve', 2_000_000, isNumberList),
    packId: text('base_pack_id', 200),
    packHash: text('base_pack_hash', 200),
    thumbnail,
    createdAt: Number.isFinite(created) ? created : now,
    updatedAt: now,
    settings: json('settings', 10_000, isSettings),
  };
  const problems = recordProblems(record);
  if (problems.length) bad(problems.join('; '));
  const warnings: string[] = [];
  if (options.currentPack && options.currentPack.hash !== record.packHash) {
    warnings.push(
      `“${record.name}” was made for the model pack “${record.packId}”, not the loaded “${options.currentPack.id}”; it can only be used with its own pack.`,
    );
  }
  return { record, warnings };
}
