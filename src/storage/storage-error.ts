// Storage failures, each with what happened and what to do. Nothing in the library code
// swallows an error: it is turned into one of these and reaches the UI's message area.
import { LikenessError, type ErrorKind } from '../domain/errors.ts';

export type StorageErrorKind =
  | 'quota' // the browser refused more data
  | 'unavailable' // IndexedDB cannot be opened (private mode, disabled, blocked)
  | 'newer-schema' // written by a newer Likeness
  | 'corrupt' // a record that does not hold together
  | 'not-found'
  | 'bad-file' // an imported concept file was refused
  | 'aborted' // the write was interrupted (tab closing, browser shutting down)
  | 'unknown';

/** How each storage failure is reported across the app (what the user can do about it differs). */
const ERROR_KIND: Record<StorageErrorKind, ErrorKind> = {
  // As the platform's QuotaExceededError: out of room, not a bug.
  quota: 'out-of-memory',
  unavailable: 'internal',
  'newer-schema': 'internal',
  corrupt: 'bad-input',
  'not-found': 'bad-input',
  'bad-file': 'bad-input',
  aborted: 'cancelled',
  unknown: 'internal',
};

export class StorageError extends LikenessError {
  constructor(
    /** What failed, in storage's own terms (the app-wide `kind` follows from it). */
    readonly code: StorageErrorKind,
    message: string,
    /** What the user can do about it. */
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }

  get kind(): ErrorKind {
    return ERROR_KIND[this.code];
  }
}

const HINTS: Record<StorageErrorKind, string> = {
  quota:
    'Free space: export concepts you want to keep and delete them here, clear other sites’ data, or free disk space on this device. Then try again — nothing was half-written.',
  unavailable:
    'The browser is not letting this page keep data (private windows and some privacy settings do this). Use a normal window, or allow site data for this page.',
  'newer-schema': 'Reload the page to get the newer version of Likeness that wrote this library. Nothing was changed.',
  corrupt:
    'That entry could not be read back whole. Delete it and import it again from an exported file if you have one.',
  'not-found': 'It may have been deleted in another tab. The list has been refreshed.',
  'bad-file': 'Choose a concept file exported by Likeness (a .safetensors file) that was made for this model pack.',
  aborted: 'The write was interrupted before it finished, so nothing was stored. Try again.',
  unknown: 'Try again. If it keeps failing, reload the page; the library is only changed by writes that finish.',
};

/** The user-facing form of any error raised by IndexedDB or by the library code. */
export function toStorageError(err: unknown, doing: string): StorageError {
  if (err instanceof StorageError) return err;
  const name = (err as { name?: unknown } | null)?.name;
  const detail = err instanceof Error || err instanceof DOMException ? err.message : String(err);
  const make = (kind: StorageErrorKind, message: string) =>
    new StorageError(kind, message, HINTS[kind], { cause: err });
  switch (name) {
    case 'QuotaExceededError':
      return make('quota', `Could not ${doing}: the browser’s storage for this site is full.`);
    case 'InvalidStateError':
    case 'SecurityError':
    case 'NotAllowedError':
      return make('unavailable', `Could not ${doing}: the browser’s database is not available (${detail}).`);
    case 'AbortError':
      return make('aborted', `Could not ${doing}: the write was interrupted (${detail || 'transaction aborted'}).`);
    case 'DataCloneError':
    case 'DataError':
      return make('corrupt', `Could not ${doing}: the data could not be stored (${detail}).`);
    case 'VersionError':
      return make('newer-schema', `Could not ${doing}: the library was written by a newer version of Likeness.`);
    default:
      return make('unknown', `Could not ${doing}: ${detail || 'unknown error'}.`);
  }
}

export function storageError(kind: StorageErrorKind, message: string, cause?: unknown): StorageError {
  return new StorageError(kind, message, HINTS[kind], { cause });
}
