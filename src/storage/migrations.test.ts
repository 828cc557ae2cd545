import { describe, expect, it } from 'vitest';
import { KEYS, SCHEMA_VERSION, type ConceptRecord, type LibraryIndex } from './concept-record.ts';
import { migrate, MIGRATIONS, type ConceptRecordV0, type KvTx } from './migrations.ts';
import { StorageError } from './storage-error.ts';

/** A key-value store with all-or-nothing transactions, as one IndexedDB object store behaves. */
class MemoryKv {
  data = new Map<string, unknown>();
  async transaction<T>(body: (tx: KvTx) => Promise<T>): Promise<T> {
    const draft = new Map(this.data);
    const tx: KvTx = {
      get: async (k) => structuredClone(draft.get(k)),
      put: async (k, v) => void draft.set(k, structuredClone(v)),
      delete: async (k) => void draft.delete(k),
      keys: async () => [...draft.keys()].sort(),
    };
    const result = await body(tx);
    this.data = draft;
    return result;
  }
}

const PNG_DATA_URL = 'data:image/png;base64,iVBORw0KGgo=';

function v0(id: string, created: string, name = `Concept ${id}`): ConceptRecordV0 {
  return {
    id,
    name,
    token: '<mug>',
    created,
    thumbnailDataUrl: PNG_DATA_URL,
    concept: {
      embedding: new Float32Array([0.5, -1, 2]),
      nearestWords: ['mug', 'cup'],
      hardTokenId: 1234,
      rank: 1,
      alpha: 1,
      blend: 0.25,
      lora: [
        {
          module: 'mid_block.attentions.0.transformer_blocks.0.attn1.to_q',
          A: new Float32Array([1, 2]),
          aShape: [1, 2],
          B: new Float32Array([3, 4, 5]),
          bShape: [3, 1],
        },
      ],
      lossCurve: [0.3, 0.2, 0.1],
      packId: 'tiny',
      packHash: 'abc123',
    },
  };
}

describe('library migrations', () => {
  it('lifts a v0 library to v1: flattened records, renamed fields, an index newest first', async () => {
    const kv = new MemoryKv();
    kv.data.set('concept:a', v0('a', '2024-01-02T03:04:05.000Z'));
    kv.data.set('concept:b', v0('b', '2024-06-01T00:00:00.000Z'));
    kv.data.set('unrelated', 42);

    const r = await kv.transaction((tx) => migrate(tx));
    expect(r).toEqual({ from: 0, to: 1 });
    expect(SCHEMA_VERSION).toBe(1);
    expect(kv.data.get(KEYS.schemaVersion)).toBe(1);

    const a = kv.data.get('concept:a') as ConceptRecord;
    expect(a).toMatchObject({
      id: 'a',
      name: 'Concept a',
      placeholder: '<mug>',
      createdAt: Date.UTC(2024, 0, 2, 3, 4, 5),
      packHash: 'abc123',
      rank: 1,
    });
    expect(a).not.toHaveProperty('token');
    expect(a).not.toHaveProperty('concept');
    expect([...a.thumbnail]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect([...a.embedding]).toEqual([0.5, -1, 2]);
    expect(a.lora[0].B).toBeInstanceOf(Float32Array);
    expect(a.settings).toEqual({ steps: 3, seed: 0, crop: null, source: null, generate: null });

    const index = kv.data.get(KEYS.index) as LibraryIndex;
    expect(index.concepts.map((c) => c.id)).toEqual(['b', 'a']);
    expect(index.concepts[1]).toMatchObject({ name: 'Concept a', placeholder: '<mug>', tensorBytes: 4 * (3 + 2 + 3) });
    expect(kv.data.get('unrelated')).toBe(42);
  });

  it('turns an empty store into an empty v1 library, and does nothing the second time', async () => {
    const kv = new MemoryKv();
    expect(await kv.transaction((tx) => migrate(tx))).toEqual({ from: 0, to: 1 });
    expect(kv.data.get(KEYS.index)).toEqual({ concepts: [] });
    const before = new Map(kv.data);
    expect(await kv.transaction((tx) => migrate(tx))).toEqual({ from: 1, to: 1 });
    expect(kv.data).toEqual(before);
  });

  it('leaves the old layout untouched when a step fails part-way', async () => {
    const kv = new MemoryKv();
    kv.data.set('concept:a', v0('a', '2024-01-02T00:00:00.000Z'));
    const snapshot = structuredClone([...kv.data]);
    const failing = {
      1: MIGRATIONS[1],
      2: async (tx: KvTx) => {
        await tx.put('concept:a', 'half-done');
        throw new Error('power cut');
      },
    };
    await expect(kv.transaction((tx) => migrate(tx, 2, failing))).rejects.toThrow('power cut');
    expect([...kv.data]).toEqual(snapshot);
  });

  it('refuses a library from a newer build and a broken version record', async () => {
    const kv = new MemoryKv();
    kv.data.set(KEYS.schemaVersion, 7);
    const err = await kv.transaction((tx) => migrate(tx)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'newer-schema' });
    kv.data.set(KEYS.schemaVersion, 'one');
    await expect(kv.transaction((tx) => migrate(tx))).rejects.toMatchObject({ code: 'corrupt' });
  });
});
