// Shallow updates of one slice's state object, and what every cancellable worker job shares.
import { workerApi } from '../../worker/client.ts';
import type { AppState, SetState } from './app-state.ts';

type Nested = 'pack' | 'photo' | 'personalize' | 'generate' | 'library';

/** `patch('pack', { status: 'done' })`: merges into one slice's state object. */
export const patcher =
  (set: SetState) =>
  <K extends Nested>(key: K, p: Partial<AppState[K]>): void =>
    set((s) => ({ [key]: { ...s[key], ...p } }));

/** Asks the worker to stop a job; the job's own rejection (kind 'cancelled') is then ignored. */
export function cancelWorkerJob(jobId: string): void {
  void Promise.resolve(workerApi().cancel(jobId)).catch(() => {});
}
