// What each failure means to the person using the app: a title, the specific message, and
// what to do. Worker errors keep the worker's own message (it names the file, the tensor,
// the limit); the kind decides the title and the advice.
import type { ErrorKind, WorkerError } from '../domain/types.ts';

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

const ADVICE: Record<ErrorKind, { title: string; hint: string }> = {
  cancelled: { title: 'Cancelled', hint: 'Nothing was changed. Start again whenever you like.' },
  'bad-input': {
    title: 'The input was refused',
    hint: 'Check the photo and the settings named above, then try again.',
  },
  pack: {
    title: 'The model pack could not be loaded',
    hint: 'Check the address or folder. A download that stopped resumes where it left off when you try again.',
  },
  'device-lost': {
    title: 'The GPU stopped responding',
    hint: 'This happens when the GPU is reset or another tab uses it heavily. Reload the page; your concept library is safe.',
  },
  'out-of-memory': {
    title: 'The GPU ran out of memory',
    hint: 'Lower the batch size, close other GPU-heavy tabs or apps, or use a smaller model pack.',
  },
  numerical: {
    title: 'The computation went wrong numerically',
    hint: 'Try another seed, fewer tuning steps or a lower guidance value.',
  },
  internal: {
    title: 'Likeness could not do that',
    hint: 'Reload the page and try again. If it keeps happening, report the message above.',
  },
};

export function workerNotice(area: NoticeArea, doing: string, e: WorkerError): Omit<Notice, 'id'> {
  const advice = ADVICE[e.kind];
  return {
    area,
    tone: e.kind === 'cancelled' ? 'info' : 'error',
    kind: e.kind,
    title: `${advice.title} (${doing})`,
    message: e.message,
    hint: advice.hint,
  };
}
