// How errors cross the worker boundary. Comlink rebuilds a thrown Error as a plain Error
// (subclass and fields lost), but passes a thrown plain object through structured clone as
// it is. So the worker throws plain `WorkerError` objects `{ kind, message, fallback? }`,
// and the UI reads any rejection back with toWorkerError — which also understands Errors
// by class name, for rejections that did not come through toWireError.
import type { ConceptData, ErrorKind, WorkerError } from '../domain/types.ts';

export const ERROR_KINDS: readonly ErrorKind[] = [
  'cancelled',
  'bad-input',
  'pack',
  'device-lost',
  'out-of-memory',
  'numerical',
  'internal',
];

export const isErrorKind = (k: unknown): k is ErrorKind =>
  typeof k === 'string' && (ERROR_KINDS as readonly string[]).includes(k);

/** Error class names thrown by the engine, the pack loader and the pipeline, and their kind. */
export const KIND_BY_ERROR_NAME: Readonly<Record<string, ErrorKind>> = {
  AbortError: 'cancelled',
  TimeoutError: 'cancelled',
  ImageError: 'bad-input',
  DeviceLostError: 'device-lost',
  // No WebGPU at all is not a lost device: the message says what is missing.
  WebGpuUnavailableError: 'internal',
  NumericalError: 'numerical',
  PackLoadError: 'pack',
  ManifestError: 'pack',
  PackCacheMissError: 'pack',
  PackWeightsError: 'pack',
  PackFileError: 'pack',
  ParamShapeError: 'pack',
  SafetensorsError: 'pack',
  JsonSyntaxError: 'pack',
  GpuValidationError: 'internal',
  // A binding above the device's limit: an op that does not split its work yet (a bug).
  BindingLimitError: 'internal',
  QuotaExceededError: 'out-of-memory',
};

const OOM = /out of memory|allocation failed|OutOfMemory/i;
const LOST = /device (was )?lost/i;

function kindOf(name: unknown, message: string): ErrorKind {
  const m = typeof name === 'string' ? /^WorkerError[:.]([\w-]+)$/.exec(name) : null;
  if (m && isErrorKind(m[1])) return m[1];
  const byName = typeof name === 'string' ? KIND_BY_ERROR_NAME[name] : undefined;
  if (byName) return byName;
  if (OOM.test(message)) return 'out-of-memory';
  if (LOST.test(message)) return 'device-lost';
  return 'internal';
}

/**
 * Any rejection as a WorkerError: a plain `{kind, message}` (what the worker throws) is kept
 * with its fallback; an Error is classified by its name (`WorkerError:<kind>` included) and
 * then by its message.
 */
export function toWorkerError(err: unknown): WorkerError {
  if (typeof err === 'object' && err !== null) {
    const o = err as { kind?: unknown; name?: unknown; message?: unknown; fallback?: unknown };
    const message = typeof o.message === 'string' && o.message ? o.message : String(err);
    if (isErrorKind(o.kind)) {
      const out: WorkerError = { kind: o.kind, message };
      if (o.kind === 'numerical' && isConceptLike(o.fallback)) out.fallback = o.fallback;
      return out;
    }
    const e: WorkerError = { kind: kindOf(o.name, message), message };
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
