// The library's concept files: the one concept format (concept-safetensors.ts, docs/concepts.md)
// with what the library keeps beside a concept carried as extra `__metadata__` entries:
//   name           the concept's name
//   settings       JSON: how it was made (steps, seed, crop, source photo) and the last generate settings
//   thumbnail_png  base64 of a small PNG
//   updated_at     ISO 8601 (created_at is the format's own key)
// Other tools ignore these keys; the tensors and the format's metadata are exactly what
// exportConcept writes.
//
// Import is as strict as importConcept, against the loaded pack: a file made for another
// pack, or one that does not hold together, is refused with ConceptFileError's message.
// The library's own keys are optional: each one that is missing, oversized or malformed
// falls back to a default (and is reported as a warning), so a file from an older export or
// another tool that kept the tensors still imports.
import { readImageHeader } from '../image/image-header.ts';
import { listPngChunks, PngFormatError } from '../image/png-text.ts';
import type { ConceptData, CropRect, GenerateSettings } from '../domain/types.ts';
import { isSamplerName } from '../domain/samplers.ts';
import { JsonSyntaxError, parseStrictJson, type JsonObjectMap, type JsonValue } from '../packs/strict-json.ts';
import { cleanName, MAX_NAME_LENGTH, type ConceptRecord, type ConceptSettings } from './concept-record.ts';
import {
  ConceptFileError,
  exportConcept,
  readConceptFile,
  type ConceptNaming,
  type ConceptPackInfo,
} from './concept-safetensors.ts';
import { StorageError, storageError } from './storage-error.ts';

export type { ConceptNaming } from './concept-safetensors.ts';

/** The `__metadata__` keys of the library layer (none is one of the format's own keys). */
export const RECORD_METADATA_KEYS = {
  name: 'name',
  settings: 'settings',
  thumbnail: 'thumbnail_png',
  updatedAt: 'updated_at',
} as const;

/** Thumbnails are 128 px PNGs (a few tens of KiB); anything beyond these bounds is not one. */
export const MAX_THUMBNAIL_BYTES = 256 * 1024;
export const MAX_THUMBNAIL_SIDE = 512;
/** Longest `settings` JSON read back; the real one is a few hundred characters. */
export const MAX_SETTINGS_CHARS = 4096;
const MAX_NAME_CHARS = 4 * MAX_NAME_LENGTH;
const MAX_SOURCE_NAME_CHARS = 255;
/** Largest image side accepted in the settings (uploads are refused above 40 MP). */
const MAX_IMAGE_SIDE = 100_000;

/** A file name for the export: the concept's name made safe, plus the naming. */
export function conceptFileName(record: Pick<ConceptRecord, 'name'>, naming: ConceptNaming = 'peft'): string {
  const stem =
    record.name
      .replace(/[^\p{L}\p{N}_-]+/gu, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'concept';
  return `${stem}${naming === 'kohya' ? '.kohya' : ''}.safetensors`;
}

/**
 * The record as a concept file. The concept itself must be one import would accept (else
 * ConceptFileError 'invalid-concept'); a thumbnail that is not a small PNG is left out.
 */
export function exportConceptFile(record: ConceptRecord, naming: ConceptNaming = 'peft'): Uint8Array {
  const extra: Record<string, string> = {
    [RECORD_METADATA_KEYS.name]: record.name,
    [RECORD_METADATA_KEYS.settings]: JSON.stringify(record.settings),
  };
  if (Number.isFinite(record.updatedAt))
    extra[RECORD_METADATA_KEYS.updatedAt] = new Date(record.updatedAt).toISOString();
  if (thumbnailProblem(record.thumbnail) === null) extra[RECORD_METADATA_KEYS.thumbnail] = toBase64(record.thumbnail);
  return exportConcept(conceptData(record), { naming, createdAt: record.createdAt, extraMetadata: extra });
}

export interface ImportedConcept {
  record: ConceptRecord;
  /** Library fields the file lacked or had damaged, each replaced by a default (the concept itself is whole). */
  warnings: string[];
}

/**
 * Reads a concept file into a new library record (fresh id) for the loaded pack, or throws a
 * StorageError 'bad-file' whose message is the refusal's (a ConceptFileError, kept as the
 * cause): not a concept, damaged, or made for another pack. `pack` null (no pack loaded) is
 * refused too, since there is nothing to check the file against.
 */
export function importConceptFile(
  bytes: Uint8Array,
  pack: ConceptPackInfo | null,
  options: { fileName: string; newId: () => string },
): ImportedConcept {
  const { fileName } = options;
  if (!pack) {
    throw new StorageError(
      'bad-file',
      `“${fileName}” cannot be imported yet: a concept is checked against the model pack it was made for, and no pack is loaded.`,
      'Load the model pack in the Model step, then import the file again.',
    );
  }
  let read: ReturnType<typeof readConceptFile>;
  try {
    read = readConceptFile(bytes, pack);
  } catch (e) {
    if (e instanceof ConceptFileError) throw storageError('bad-file', `“${fileName}” was refused. ${e.message}`, e);
    throw e;
  }
  const { concept, metadata } = read;
  const warnings: string[] = [];
  const ignored = (what: string) =>
    warnings.push(`“${fileName}”: ${what}, so that part was left out (the concept itself was imported whole).`);

  const createdAt = Date.parse(read.createdAt);
  const name = readName(metadata[RECORD_METADATA_KEYS.name]);
  if (name === undefined) ignored('its name is not usable');
  const fallbackName =
    cleanName(fileName.replace(/\.safetensors$/i, '')) ?? cleanName(concept.placeholder) ?? 'Imported concept';

  const settings = readSettings(metadata[RECORD_METADATA_KEYS.settings], concept);
  if (settings.problem) ignored(`its settings ${settings.problem}`);

  let thumbnail: Uint8Array = new Uint8Array(0);
  const thumbText = metadata[RECORD_METADATA_KEYS.thumbnail];
  if (thumbText !== undefined) {
    const t = readThumbnail(thumbText);
    if (typeof t === 'string') ignored(`its thumbnail ${t}`);
    else thumbnail = t;
  }

  let updatedAt = createdAt;
  const updatedText = metadata[RECORD_METADATA_KEYS.updatedAt];
  if (updatedText !== undefined) {
    const u = readDate(updatedText);
    // Silently: a date is not something the user misses.
    if (u !== null && u >= createdAt) updatedAt = u;
  }

  return {
    record: {
      ...concept,
      id: options.newId(),
      name: name ?? fallbackName,
      thumbnail,
      createdAt,
      updatedAt,
      settings: settings.value,
    },
    warnings,
  };
}

// ------------------------------------------------------------------------------------------

/** Only the ConceptData fields: a stored record may carry more, which the file must not. */
export function conceptData(r: ConceptRecord): ConceptData {
  return {
    placeholder: r.placeholder,
    embedding: r.embedding,
    nearestWords: r.nearestWords,
    hardTokenId: r.hardTokenId,
    ...(r.hardTokenIds ? { hardTokenIds: r.hardTokenIds } : {}),
    rank: r.rank,
    alpha: r.alpha,
    blend: r.blend,
    lora: r.lora,
    lossCurve: r.lossCurve,
    packId: r.packId,
    packHash: r.packHash,
  };
}

/** The cleaned name; null when absent (nothing to report), undefined when present but unusable. */
function readName(v: string | undefined): string | null | undefined {
  if (v === undefined) return null;
  if (v.length > MAX_NAME_CHARS) return undefined;
  return cleanName(v) ?? undefined;
}

function readDate(v: string): number | null {
  if (v.length > 40 || !/^\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})$/.test(v)) return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

/** What the library shows for a concept whose settings are unknown (as the v0 migration does). */
export function defaultSettings(concept: Pick<ConceptData, 'lossCurve'>): ConceptSettings {
  return { steps: concept.lossCurve.length, seed: 0, crop: null, source: null, generate: null };
}

/**
 * Settings from their JSON, field by field: a bad field takes its default and is named in
 * `problem`, the others are kept.
 */
function readSettings(
  text: string | undefined,
  concept: Pick<ConceptData, 'lossCurve'>,
): { value: ConceptSettings; problem: string | null } {
  const value = defaultSettings(concept);
  if (text === undefined) return { value, problem: null };
  if (text.length > MAX_SETTINGS_CHARS) return { value, problem: `are over ${MAX_SETTINGS_CHARS} characters` };
  let parsed: JsonValue;
  try {
    parsed = parseStrictJson(text, { maxDepth: 3 });
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { value, problem: 'are not valid JSON' };
    throw e;
  }
  if (!(parsed instanceof Map)) return { value, problem: 'are not a JSON object' };
  const obj = parsed;
  const bad: string[] = [];
  // A field that is absent keeps its default quietly; one that is present but unusable is reported.
  const field = <T>(key: keyof ConceptSettings, read: (v: JsonValue) => T | undefined): T | undefined => {
    if (!obj.has(key)) return undefined;
    const v = read(obj.get(key)!);
    if (v === undefined) bad.push(key);
    return v;
  };
  value.steps = field('steps', (v) => int(v, 0, 10_000)) ?? value.steps;
  value.seed = field('seed', (v) => int(v, 0, 0xffffffff)) ?? value.seed;
  value.crop = field('crop', nullable(readCrop)) ?? null;
  value.source = field('source', nullable(readSource)) ?? null;
  value.generate = field('generate', nullable(readGenerate)) ?? null;
  return { value, problem: bad.length ? `had unusable ${bad.join(', ')}` : null };
}

const int = (v: JsonValue | undefined, min: number, max: number): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined;
const num = (v: JsonValue | undefined, min: number, max: number): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : undefined;
const nullable =
  <T>(read: (m: JsonObjectMap) => T | undefined) =>
  (v: JsonValue): T | null | undefined =>
    v === null ? null : v instanceof Map ? read(v) : undefined;

// Each reader builds a fresh object from the fields it knows (keys it does not know are
// dropped, so a later version's additions do not make the whole field unusable) and answers
// undefined when one of them is missing or out of range.

function readCrop(m: JsonObjectMap): CropRect | undefined {
  const x = num(m.get('x'), 0, MAX_IMAGE_SIDE);
  const y = num(m.get('y'), 0, MAX_IMAGE_SIDE);
  const size = num(m.get('size'), 1, MAX_IMAGE_SIDE);
  return x !== undefined && y !== undefined && size !== undefined ? { x, y, size } : undefined;
}

function readSource(m: JsonObjectMap): ConceptSettings['source'] | undefined {
  const name = m.get('name');
  const width = int(m.get('width'), 1, MAX_IMAGE_SIDE);
  const height = int(m.get('height'), 1, MAX_IMAGE_SIDE);
  // eslint-disable-next-line no-control-regex -- a file name with control characters is not one
  if (typeof name !== 'string' || name.length > MAX_SOURCE_NAME_CHARS || /[\u0000-\u001f\u007f]/.test(name))
    return undefined;
  return width !== undefined && height !== undefined ? { name, width, height } : undefined;
}

function readGenerate(m: JsonObjectMap): GenerateSettings | undefined {
  const sampler = m.get('sampler');
  const steps = int(m.get('steps'), 1, 1000);
  const guidance = num(m.get('guidance'), 0, 100);
  const blend = num(m.get('blend'), 0, 1);
  const batch = int(m.get('batch'), 1, 64);
  if (!isSamplerName(sampler)) return undefined;
  return steps !== undefined && guidance !== undefined && blend !== undefined && batch !== undefined
    ? { steps, guidance, sampler, blend, batch }
    : undefined;
}

/** The PNG bytes, or why they are not usable. */
function readThumbnail(text: string): Uint8Array | string {
  if (text.length > Math.ceil(MAX_THUMBNAIL_BYTES / 3) * 4) return `is over ${MAX_THUMBNAIL_BYTES} bytes`;
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return 'is not valid base64';
  const bytes = fromBase64(text);
  const problem = thumbnailProblem(bytes);
  return problem ? `is ${problem}` : bytes;
}

/** Why `png` is not a usable thumbnail (a whole, small PNG), or null. */
function thumbnailProblem(png: Uint8Array): string | null {
  if (!(png instanceof Uint8Array) || png.length === 0) return 'empty';
  if (png.length > MAX_THUMBNAIL_BYTES) return `over ${MAX_THUMBNAIL_BYTES} bytes`;
  const h = readImageHeader(png);
  if (!h.ok || h.header.format !== 'png') return 'not a PNG image';
  if (h.header.width > MAX_THUMBNAIL_SIDE || h.header.height > MAX_THUMBNAIL_SIDE)
    return `${h.header.width} × ${h.header.height} pixels, over ${MAX_THUMBNAIL_SIDE}`;
  // The header is sound; the chunks after it must be too, ending at IEND with the file.
  try {
    const chunks = listPngChunks(png);
    const last = chunks.at(-1)!;
    if (
      !chunks.every((c) => c.crcOk) ||
      !chunks.some((c) => c.type === 'IDAT') ||
      last.type !== 'IEND' ||
      last.offset + 12 + last.length !== png.length
    ) {
      return 'a damaged PNG image';
    }
  } catch (e) {
    if (e instanceof PngFormatError) return 'a damaged PNG image';
    throw e;
  }
  return null;
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
