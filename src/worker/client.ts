// The UI's handle on the worker, and how errors that cross the boundary are read back.
import * as Comlink from 'comlink';
import type { ErrorKind, WorkerApi, WorkerError } from './api.ts';

let remote: Comlink.Remote<WorkerApi> | null = null;

export function workerApi(): Comlink.Remote<WorkerApi> {
  remote ??= Comlink.wrap<WorkerApi>(
    new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'likeness-engine' }),
  );
  return remote;
}

/** Wraps a progress callback so the worker can call it across the boundary. */
export const progressCallback = <T>(fn: (p: T) => void): ((p: T) => void) => Comlink.proxy(fn);

let jobCounter = 0;
/** A fresh id for a cancellable call (`cancel(jobId)`). */
export function newJobId(kind: string): string {
  jobCounter++;
  const rand =
    typeof crypto !== 'undefined' && 'randomUUID' in crypto
      ? crypto.randomUUID().slice(0, 8)
      : Math.random().toString(36).slice(2, 10);
  return `${kind}-${jobCounter}-${rand}`;
}

export const ERROR_KINDS: readonly ErrorKind[] = [
  'cancelled',
  'bad-input',
  'pack',
  'device-lost',
  'out-of-memory',
  'numerical',
  'internal',
];
const isKind = (k: unknown): k is ErrorKind => typeof k === 'string' && (ERROR_KINDS as readonly string[]).includes(k);

// Error class names thrown inside the worker (engine, packs) and the kind each one means.
const KIND_BY_NAME: Record<string, ErrorKind> = {
  AbortError: 'cancelled',
  DeviceLostError: 'device-lost',
  WebGpuUnavailableError: 'device-lost',
  PackLoadError: 'pack',
  ManifestError: 'pack',
  PackCacheMissError: 'pack',
  SafetensorsError: 'pack',
  JsonSyntaxError: 'pack',
  GpuValidationError: 'internal',
};

/**
 * Any rejection from the worker as a WorkerError. Comlink passes a thrown plain object
 * through as it is, and a thrown Error as {name, message}; both keep a kind here when the
 * worker sets one — as `kind` on a plain object, or as the name `WorkerError:<kind>`.
 */
export function toWorkerError(err: unknown): WorkerError {
  if (typeof err === 'object' && err !== null) {
    const o = err as { kind?: unknown; name?: unknown; message?: unknown };
    const message = typeof o.message === 'string' && o.message ? o.message : String(err);
    if (isKind(o.kind)) return { kind: o.kind, message };
    if (typeof o.name === 'string') {
      const m = /^WorkerError[:.]([\w-]+)$/.exec(o.name);
      if (m && isKind(m[1])) return { kind: m[1], message };
      const byName = KIND_BY_NAME[o.name];
      if (byName) return { kind: byName, message };
    }
    if (/out of memory|allocation failed|OutOfMemory/i.test(message)) return { kind: 'out-of-memory', message };
    if (/device (was )?lost/i.test(message)) return { kind: 'device-lost', message };
    return { kind: 'internal', message };
  }
  return { kind: 'internal', message: String(err) };
}
