// What each failure means to the person using the app: a title, the specific message, and
// what to do. Worker errors keep the worker's own message (it names the file, the tensor,
// the limit); the kind decides the title and the advice (their wording is in copy.ts).
import type { WorkerError } from '../domain/types.ts';
import { WORKER_ERROR_ADVICE } from './copy.ts';

export type NoticeArea = 'gpu' | 'pack' | 'photo' | 'personalize' | 'generate' | 'library';
export type NoticeTone = 'error' | 'warning' | 'info';

export interface Notice {
  id: number;
  area: NoticeArea;
  tone: NoticeTone;
  /** Machine-readable: a worker ErrorKind, an upload problem, a storage error kind… */
  kind: string;
  title: string;
  message: string;
  hint: string | null;
}

export function workerNotice(area: NoticeArea, doing: string, e: WorkerError): Omit<Notice, 'id'> {
  const advice = WORKER_ERROR_ADVICE[e.kind];
  return {
    area,
    tone: e.kind === 'cancelled' ? 'info' : 'error',
    kind: e.kind,
    title: `${advice.title} (${doing})`,
    message: e.message,
    hint: advice.hint,
  };
}
