// How errors cross the worker boundary. Comlink rebuilds a thrown Error as a plain Error
// (subclass and fields lost), but passes a thrown plain object through structured clone as
// it is. So the worker throws plain `WorkerError` objects `{ kind, message, fallback? }`,
// and the UI reads any rejection back with toWorkerError.
//
// The kind comes from the error itself: a project error carries it (domain/errors.ts), and
// the platform's own errors are recognised by their standard types. Never by class name or
// message text, so a new error class cannot silently turn "internal".
import { ERROR_KINDS, isErrorKind, LikenessError, type ErrorKind } from '../domain/errors.ts';
import type { ConceptData, WorkerError } from '../domain/types.ts';

export { ERROR_KINDS, isErrorKind };

/** The platform's DOMException types (their `name` is the standard's type, not a class name of ours). */
const KIND_BY_DOM_EXCEPTION: Readonly<Record<string, ErrorKind>> = {
  AbortError: 'cancelled',
  TimeoutError: 'cancelled',
  // The browser's storage for this site is full.
  QuotaExceededError: 'out-of-memory',
};

/**
 * A JS engine that cannot allocate an ArrayBuffer throws a plain RangeError; its message is
 * the only mark it has (V8: "Array buffer allocation failed", Firefox and Safari: "out of
 * memory"). This is the one message test, and it applies to that platform error alone.
 */
const isAllocationFailure = (e: unknown): boolean =>
  e instanceof RangeError && /allocation failed|out of memory/i.test(e.message);

/** The kind of anything thrown: a project error's own, a platform error's, or 'internal'. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof LikenessError) return err.kind;
  if (typeof DOMException !== 'undefined' && err instanceof DOMException) {
    return KIND_BY_DOM_EXCEPTION[err.name] ?? 'internal';
  }
  if (typeof GPUOutOfMemoryError !== 'undefined' && err instanceof GPUOutOfMemoryError) return 'out-of-memory';
  if (isAllocationFailure(err)) return 'out-of-memory';
  // What the worker throws, after structured cloning: a plain object that kept its kind.
  const kind = typeof err === 'object' && err !== null ? (err as { kind?: unknown }).kind : undefined;
  return isErrorKind(kind) ? kind : 'internal';
}

/**
 * Any rejection as a WorkerError: a plain `{kind, message}` (what the worker throws) is kept
 * with its fallback; anything else gets the kind errorKind gives it.
 */
export function toWorkerError(err: unknown): WorkerError {
  if (typeof err === 'object' && err !== null) {
    const o = err as { message?: unknown; fallback?: unknown };
    // An object without a message says nothing useful as a string ('[object Object]').
    const message =
      typeof o.message === 'string' && o.message
        ? o.message
        : err instanceof Error
          ? err.name
          : 'an error without a message';
    const e: WorkerError = { kind: errorKind(err), message };
    if (e.kind === 'numerical' && isConceptLike(o.fallback)) e.fallback = o.fallback;
    return e;
  }
  return { kind: 'internal', message: String(err) };
}

function isConceptLike(v: unknown): v is ConceptData {
  const c = v as Partial<ConceptData> | null;
  return !!c && typeof c === 'object' && c.embedding instanceof Float32Array && Array.isArray(c.lora);
}

/** What the worker throws: a plain, structured-cloneable WorkerError (never an Error). */
export function toWireError(err: unknown, extra: { cancelled?: boolean } = {}): WorkerError {
  if (extra.cancelled) return { kind: 'cancelled', message: 'Cancelled.' };
  const e = toWorkerError(err);
  // The Error-to-plain conversion keeps only what clones: kind, message, fallback.
  return e.fallback ? { kind: e.kind, message: e.message, fallback: e.fallback } : { kind: e.kind, message: e.message };
}
