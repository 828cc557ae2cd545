// The UI's handle on the worker.
import * as Comlink from 'comlink';
import type { WorkerApi } from './api.ts';

let remote: Comlink.Remote<WorkerApi> | null = null;

export function workerApi(): Comlink.Remote<WorkerApi> {
  remote ??= Comlink.wrap<WorkerApi>(
    new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'likeness-engine' }),
  );
  return remote;
}
