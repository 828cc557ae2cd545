// Lifting an older library layout to the current one. `meta:schemaVersion` says which layout
// the store holds (absent = 0). MIGRATIONS[n] turns layout n−1 into layout n; `migrate` runs
// the missing steps in order and writes the new version, all inside ONE readwrite
// transaction, so a migration interrupted by a closed tab leaves the old layout untouched.
//
// Migrations see the store through KvTx (get/put/delete/keys on one object store), which the
// library implements over IDBObjectStore and the tests over a Map.
import { KEYS, SCHEMA_VERSION, summarize, type ConceptRecord, type LibraryIndex } from './concept-record.ts';
import { storageError } from './storage-error.ts';

export interface KvTx {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
}

export type Migration = (tx: KvTx) => Promise<void>;

/**
 * Layout 0 — the prototype's, before the library was versioned: one record per concept
 * under `concept:<id>`, no index, the placeholder called `token`, the date an ISO string,
 * the thumbnail a data: URL and the tensors nested under `concept`.
 */
export interface ConceptRecordV0 {
  id: string;
  name: string;
  token: string;
  created: string;
  thumbnailDataUrl: string;
  concept: Omit<ConceptRecord, 'id' | 'name' | 'placeholder' | 'thumbnail' | 'createdAt' | 'updatedAt' | 'settings'>;
}

function dataUrlBytes(url: string): Uint8Array {
  const m = /^data:[^;,]*;base64,(.*)$/s.exec(url);
  if (!m) return new Uint8Array(0);
  const bin = atob(m[1]);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export const MIGRATIONS: Readonly<Record<number, Migration>> = {
  // 0 → 1: flatten records, rename fields, add settings, and build the index record.
  1: async (tx) => {
    const concepts: ConceptRecord[] = [];
    for (const key of await tx.keys()) {
      if (!key.startsWith(KEYS.conceptPrefix)) continue;
      const old = (await tx.get(key)) as ConceptRecordV0;
      const createdAt = Date.parse(old.created);
      const record: ConceptRecord = {
        ...old.concept,
        id: old.id,
        name: old.name,
        placeholder: old.token,
        thumbnail: dataUrlBytes(old.thumbnailDataUrl),
        createdAt: Number.isFinite(createdAt) ? createdAt : 0,
        updatedAt: Number.isFinite(createdAt) ? createdAt : 0,
        settings: { steps: old.concept.lossCurve.length, seed: 0, crop: null, source: null, generate: null },
      };
      await tx.put(key, record);
      concepts.push(record);
    }
    concepts.sort((a, b) => b.createdAt - a.createdAt);
    const index: LibraryIndex = { concepts: concepts.map(summarize) };
    await tx.put(KEYS.index, index);
  },
};

/** Runs every step from the stored version to `target`; returns both. Call inside one transaction. */
export async function migrate(
  tx: KvTx,
  target = SCHEMA_VERSION,
  migrations: Readonly<Record<number, Migration>> = MIGRATIONS,
): Promise<{ from: number; to: number }> {
  const stored = await tx.get(KEYS.schemaVersion);
  const from = stored === undefined ? 0 : stored;
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 0) {
    throw storageError(
      'corrupt',
      `The library’s schema version record holds ${JSON.stringify(stored)}, not a version number.`,
    );
  }
  if (from > target) {
    throw storageError(
      'newer-schema',
      `The library was written by a newer Likeness (layout ${from}; this one reads up to ${target}).`,
    );
  }
  for (let v = from + 1; v <= target; v++) {
    const step = migrations[v];
    if (!step) throw storageError('unknown', `No migration to library layout ${v}.`);
    await step(tx);
  }
  if (from !== target) await tx.put(KEYS.schemaVersion, target);
  return { from, to: target };
}
