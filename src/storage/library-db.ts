// The concept library in IndexedDB (one database, one object store, through idb-keyval's
// createStore). Every change — save, rename, delete, migration — is ONE readwrite
// transaction that writes the concept record and the index record together, so a closed
// tab, a crash or a full disk leaves either the old state or the new one, never half.
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import {
  cleanName,
  KEYS,
  recordProblems,
  summarize,
  type ConceptRecord,
  type ConceptSummary,
  type LibraryIndex,
} from './concept-record.ts';
import { migrate, type KvTx } from './migrations.ts';
import { storageError, toStorageError } from './storage-error.ts';

export const DEFAULT_DB = 'likeness';
export const DEFAULT_STORE = 'library';

export interface OpenReport {
  from: number;
  to: number;
  /**
   * Set when the index disagreed with the records and was rebuilt from them; damaged records
   * are moved aside under `damaged:<id>` (kept, not deleted) and counted in `quarantined`.
   */
  repaired: { added: number; dropped: number; quarantined: number } | null;
}

export interface StorageEstimate {
  usage: number;
  quota: number;
  persisted: boolean | null;
}

export interface WriteHooks {
  /** Called once the record's put has been issued inside the transaction (tests close the tab here). */
  onIssued?: () => void;
}

function kvOver(os: IDBObjectStore): KvTx {
  return {
    get: (k) => promisifyRequest(os.get(k)),
    put: async (k, v) => void (await promisifyRequest(os.put(v, k))),
    delete: async (k) => void (await promisifyRequest(os.delete(k))),
    keys: async () => (await promisifyRequest(os.getAllKeys())).filter((k): k is string => typeof k === 'string'),
  };
}

export class ConceptLibrary {
  private constructor(private readonly store: UseStore) {}

  /** Opens (creating when absent) and migrates the library, then checks index against records. */
  static async open(
    dbName = DEFAULT_DB,
    storeName = DEFAULT_STORE,
  ): Promise<{ library: ConceptLibrary; report: OpenReport }> {
    if (typeof indexedDB === 'undefined') {
      throw storageError('unavailable', 'This browser has no IndexedDB, so concepts cannot be kept.');
    }
    const library = new ConceptLibrary(createStore(dbName, storeName));
    const report = await library.transaction('readwrite', 'open the concept library', async (tx) => {
      const versions = await migrate(tx);
      const repaired = await reconcile(tx);
      return { ...versions, repaired };
    });
    return { library, report };
  }

  /**
   * One transaction: the body's requests all commit or none do. A body that throws aborts
   * the transaction (undoing writes it already issued); failures become StorageErrors.
   */
  private async transaction<T>(
    mode: IDBTransactionMode,
    doing: string,
    body: (tx: KvTx, os: IDBObjectStore) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.store(mode, async (os) => {
        const done = promisifyRequest(os.transaction);
        // A failed request also fails `done`; keep it from being reported as unhandled while
        // the body's own rejection is the one that is rethrown.
        done.catch(() => {});
        let result: T;
        try {
          result = await body(kvOver(os), os);
        } catch (err) {
          try {
            os.transaction.abort();
          } catch {
            // Already finished or aborted by the failing request: nothing to undo.
          }
          throw err;
        }
        await done;
        return result;
      });
    } catch (err) {
      throw toStorageError(err, doing);
    }
  }

  async list(): Promise<ConceptSummary[]> {
    const index = await this.transaction('readonly', 'read the concept library', (tx) => tx.get(KEYS.index));
    return (index as LibraryIndex | undefined)?.concepts ?? [];
  }

  async get(id: string): Promise<ConceptRecord> {
    const record = (await this.transaction('readonly', 'read the concept', (tx) => tx.get(KEYS.concept(id)))) as
      ConceptRecord | undefined;
    if (!record) throw storageError('not-found', 'That concept is no longer in the library.');
    const problems = recordProblems(record);
    if (problems.length) throw storageError('corrupt', `The concept “${record.name}” is damaged: ${problems[0]}.`);
    return record;
  }

  /** Stores a new or replaced concept and its index entry atomically; returns the new index. */
  async save(record: ConceptRecord, hooks: WriteHooks = {}): Promise<ConceptSummary[]> {
    const problems = recordProblems(record);
    if (problems.length) throw storageError('corrupt', `The concept cannot be saved: ${problems.join('; ')}.`);
    return this.transaction('readwrite', `save “${record.name}”`, async (tx, os) => {
      // Issued before anything is awaited: the record and the index go out in one transaction.
      const written = promisifyRequest(os.put(record, KEYS.concept(record.id)));
      written.catch(() => {}); // awaited below; the transaction reports the failure too
      hooks.onIssued?.();
      const index = ((await tx.get(KEYS.index)) as LibraryIndex | undefined) ?? { concepts: [] };
      const concepts = [summarize(record), ...index.concepts.filter((c) => c.id !== record.id)];
      concepts.sort((a, b) => b.createdAt - a.createdAt);
      await tx.put(KEYS.index, { concepts } satisfies LibraryIndex);
      await written;
      return concepts;
    });
  }

  async rename(id: string, name: string): Promise<ConceptSummary[]> {
    const clean = cleanName(name);
    if (!clean) throw storageError('corrupt', 'A concept needs a name with at least one visible character.');
    return this.transaction('readwrite', `rename the concept to “${clean}”`, async (tx) => {
      const record = (await tx.get(KEYS.concept(id))) as ConceptRecord | undefined;
      if (!record) throw storageError('not-found', 'That concept is no longer in the library.');
      const updated: ConceptRecord = { ...record, name: clean, updatedAt: Date.now() };
      await tx.put(KEYS.concept(id), updated);
      const index = ((await tx.get(KEYS.index)) as LibraryIndex | undefined) ?? { concepts: [] };
      const concepts = index.concepts.map((c) => (c.id === id ? summarize(updated) : c));
      await tx.put(KEYS.index, { concepts } satisfies LibraryIndex);
      return concepts;
    });
  }

  async delete(id: string): Promise<ConceptSummary[]> {
    return this.transaction('readwrite', 'delete the concept', async (tx) => {
      await tx.delete(KEYS.concept(id));
      const index = ((await tx.get(KEYS.index)) as LibraryIndex | undefined) ?? { concepts: [] };
      const concepts = index.concepts.filter((c) => c.id !== id);
      await tx.put(KEYS.index, { concepts } satisfies LibraryIndex);
      return concepts;
    });
  }

  /**
   * Asks the browser (once per library) not to evict this site's data under storage
   * pressure. Returns whether storage is persistent now, or null where the API is missing.
   */
  async requestPersistence(): Promise<boolean | null> {
    const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
    if (!storage?.persisted || !storage.persist) return null;
    if (await storage.persisted()) return true;
    const asked = await this.transaction('readonly', 'read the library settings', (tx) => tx.get(KEYS.persist));
    if (asked) return false;
    const granted = await storage.persist();
    await this.transaction('readwrite', 'save the library settings', (tx) =>
      tx.put(KEYS.persist, { requestedAt: Date.now(), granted }),
    );
    return granted;
  }

  static async estimate(): Promise<StorageEstimate | null> {
    const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
    if (!storage?.estimate) return null;
    const e = await storage.estimate();
    const persisted = storage.persisted ? await storage.persisted() : null;
    return { usage: e.usage ?? 0, quota: e.quota ?? 0, persisted };
  }
}

/**
 * Makes the index agree with the records. Atomic writes keep them in step; this is the
 * safety net for stores edited by something else (devtools, an older build with a bug).
 * Rebuilding reads every record, so it only happens when the key sets differ.
 */
async function reconcile(tx: KvTx): Promise<OpenReport['repaired']> {
  const index = ((await tx.get(KEYS.index)) as LibraryIndex | undefined) ?? { concepts: [] };
  const recordIds = new Set(
    (await tx.keys()).filter((k) => k.startsWith(KEYS.conceptPrefix)).map((k) => k.slice(KEYS.conceptPrefix.length)),
  );
  const indexIds = new Set(index.concepts.map((c) => c.id));
  const same = recordIds.size === indexIds.size && [...recordIds].every((id) => indexIds.has(id));
  if (same) return null;
  const concepts: ConceptSummary[] = [];
  let quarantined = 0;
  for (const id of recordIds) {
    const record = (await tx.get(KEYS.concept(id))) as ConceptRecord;
    if (recordProblems(record).length === 0) {
      concepts.push(summarize(record));
    } else {
      await tx.put(`${KEYS.damagedPrefix}${id}`, record);
      await tx.delete(KEYS.concept(id));
      quarantined++;
    }
  }
  concepts.sort((a, b) => b.createdAt - a.createdAt);
  await tx.put(KEYS.index, { concepts } satisfies LibraryIndex);
  const added = concepts.filter((c) => !indexIds.has(c.id)).length;
  const dropped = [...indexIds].filter((id) => !concepts.some((c) => c.id === id)).length;
  return { added, dropped, quarantined };
}
