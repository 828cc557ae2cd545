// The UI's handle on the worker, and how errors that cross the boundary are read back.
import * as Comlink from 'comlink';
import type { WorkerApi } from './api.ts';

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

// The worker throws plain WorkerError objects; worker-error.ts reads any rejection back.
export { ERROR_KINDS, toWorkerError } from './worker-error.ts';
