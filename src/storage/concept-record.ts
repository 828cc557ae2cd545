// What the concept library stores. A concept is ONE record (ConceptData + name, thumbnail,
// dates, settings; tensors and thumbnail inside it) so it is either fully stored or absent;
// the index record lists summaries so the library can be shown without reading tensors.
import type { ConceptData, ConceptStart, CropRect, GenerateSettings } from '../domain/types.ts';

/** The layout this build reads and writes (see migrations.ts for how older ones are lifted). */
export const SCHEMA_VERSION = 1;

export const KEYS = {
  schemaVersion: 'meta:schemaVersion',
  index: 'meta:index',
  persist: 'meta:persist',
  conceptPrefix: 'concept:',
  /** Records that failed their checks, set aside by the index repair rather than deleted. */
  damagedPrefix: 'damaged:',
  concept: (id: string) => `concept:${id}`,
} as const;

/** How the concept was made, and the generation settings last used with it. */
export interface ConceptSettings {
  steps: number;
  seed: number;
  crop: CropRect | null;
  source: { name: string; width: number; height: number } | null;
  generate: GenerateSettings | null;
}

export interface ConceptRecord extends ConceptData {
  id: string;
  name: string;
  /** PNG bytes, square, small (≤ 256 px). */
  thumbnail: Uint8Array;
  createdAt: number;
  updatedAt: number;
  settings: ConceptSettings;
}

/** What the library list shows; kept in the index record. */
export interface ConceptSummary {
  id: string;
  name: string;
  placeholder: string;
  nearestWords: string[];
  packId: string;
  packHash: string;
  createdAt: number;
  updatedAt: number;
  thumbnail: Uint8Array;
  /** Bytes of tensor data in the record. */
  tensorBytes: number;
  /** Where tuning started; absent for concepts made before it was recorded. */
  start?: ConceptStart;
}

export interface LibraryIndex {
  /** Newest first. */
  concepts: ConceptSummary[];
}

export function summarize(r: ConceptRecord): ConceptSummary {
  return {
    id: r.id,
    name: r.name,
    placeholder: r.placeholder,
    nearestWords: r.nearestWords.slice(0, 5),
    packId: r.packId,
    packHash: r.packHash,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    thumbnail: r.thumbnail,
    tensorBytes: 4 * (r.embedding.length + r.lora.reduce((n, l) => n + l.A.length + l.B.length, 0)),
    ...(r.start ? { start: r.start } : {}),
  };
}

export const MAX_NAME_LENGTH = 120;
export const MAX_PLACEHOLDER_LENGTH = 64;

/** Tidies a user-typed name; null when nothing usable is left. */
export function cleanName(name: string): string | null {
  const s = name
    // eslint-disable-next-line no-control-regex -- control characters are what it removes
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return s ? s.slice(0, MAX_NAME_LENGTH) : null;
}

/**
 * Every way a record can be inconsistent, as sentences (empty when it is sound). Used on
 * import (files from strangers) and when auditing the library.
 */
export function recordProblems(r: ConceptRecord): string[] {
  const p: string[] = [];
  const isArray = (x: unknown): x is Float32Array => x instanceof Float32Array;
  if (typeof r.id !== 'string' || !r.id) p.push('it has no id');
  if (typeof r.name !== 'string' || !cleanName(r.name)) p.push('it has no name');
  if (typeof r.placeholder !== 'string' || !r.placeholder.trim() || r.placeholder.length > MAX_PLACEHOLDER_LENGTH) {
    p.push('its placeholder token is empty or too long');
  }
  if (!isArray(r.embedding) || r.embedding.length === 0) p.push('its word embedding is missing');
  else if (!r.embedding.every(Number.isFinite)) p.push('its word embedding holds non-finite numbers');
  if (!Number.isInteger(r.rank) || r.rank < 0) p.push(`its LoRA rank ${r.rank} is not a non-negative integer`);
  for (const key of ['alpha', 'blend'] as const) if (!Number.isFinite(r[key])) p.push(`its ${key} is not a number`);
  if (!Array.isArray(r.lora)) p.push('its LoRA list is missing');
  else {
    const seen = new Set<string>();
    for (const l of r.lora) {
      const at = `LoRA module ${JSON.stringify(l?.module)}`;
      if (typeof l?.module !== 'string' || !l.module) {
        p.push('a LoRA module has no name');
        continue;
      }
      if (seen.has(l.module)) p.push(`${at} appears twice`);
      seen.add(l.module);
      if (!isArray(l.A) || !isArray(l.B)) {
        p.push(`${at} is missing A or B`);
        continue;
      }
      const [ar, ain] = l.aShape ?? [];
      const [bout, br] = l.bShape ?? [];
      if (ar !== r.rank || br !== r.rank) p.push(`${at} has rank ${ar}/${br}, not ${r.rank}`);
      if (l.A.length !== ar * ain)
        p.push(`${at}: A holds ${l.A.length} numbers, its shape [${ar}, ${ain}] needs ${ar * ain}`);
      if (l.B.length !== bout * br)
        p.push(`${at}: B holds ${l.B.length} numbers, its shape [${bout}, ${br}] needs ${bout * br}`);
      if (!l.A.every(Number.isFinite) || !l.B.every(Number.isFinite)) p.push(`${at} holds non-finite numbers`);
    }
  }
  if (!(r.thumbnail instanceof Uint8Array)) p.push('its thumbnail is missing');
  if (!Number.isFinite(r.createdAt)) p.push('its creation date is missing');
  return p;
}
