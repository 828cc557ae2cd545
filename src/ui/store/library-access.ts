// The concept library (IndexedDB) as the slices reach it: opened once, on first use, and
// every storage failure shown in the library's message area.
import type { ConceptLibrary } from '../../storage/library-db.ts';
import { toStorageError, type StorageError } from '../../storage/storage-error.ts';
import { STORAGE_TITLES } from '../copy.ts';
import type { GetState } from './app-state.ts';

/** The open library and the opening in progress; initLibrary (library-slice.ts) sets both. */
export const connection: { library: ConceptLibrary | null; opening: Promise<ConceptLibrary> | null } = {
  library: null,
  opening: null,
};

/** The open library; opens it first if needed, rejecting with the StorageError that stopped it. */
export function needLibrary(get: GetState): Promise<ConceptLibrary> {
  if (connection.library) return Promise.resolve(connection.library);
  // initLibrary sets connection.opening before its first await.
  if (!connection.opening) void get().initLibrary();
  return connection.opening!;
}

/** Shows a storage failure (anything thrown while `doing`) and returns it as a StorageError. */
export function storageFailure(get: GetState, err: unknown, doing: string): StorageError {
  const e = toStorageError(err, doing);
  get().notify({
    area: 'library',
    tone: 'error',
    kind: e.code,
    title: STORAGE_TITLES[e.code],
    message: e.message,
    hint: e.hint,
  });
  return e;
}
