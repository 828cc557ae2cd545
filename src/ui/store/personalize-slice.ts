// The Personalize step: the tuning settings, the run in the worker (its stages, nearest
// words and losses as they arrive), and saving the concept it produces to the library.
import { DEFAULTS } from '../../domain/defaults.ts';
import type { ConceptData, ConceptStart, PersonalizeProgress } from '../../domain/types.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../../worker/client.ts';
import { NOTICES, WORKER_DOING } from '../copy.ts';
import { workerNotice } from '../messages.ts';
import type { JobStatus, Slice } from './app-state.ts';
import { selectConcept } from './generate-slice.ts';
import { cancelWorkerJob, patcher } from './patch.ts';

export interface PersonalizeState {
  placeholder: string;
  steps: number;
  seed: number;
  classWord: string;
  status: JobStatus;
  stage: PersonalizeProgress['stage'] | null;
  jobId: string | null;
  step: number;
  totalSteps: number;
  nearest: string[];
  /** Where this run's tuning started (the encoder or the class word), once known. */
  start: ConceptStart | null;
  losses: number[];
  /** The library id of the concept this run produced. */
  savedId: string | null;
}

export interface PersonalizeSlice {
  personalize: PersonalizeState;
  setPersonalize(patch: Partial<Pick<PersonalizeState, 'placeholder' | 'steps' | 'seed' | 'classWord'>>): void;
  startPersonalize(): Promise<void>;
  cancelPersonalize(): void;
}

export const createPersonalizeSlice: Slice<PersonalizeSlice> = (set, get) => {
  const patch = patcher(set);
  return {
    personalize: {
      placeholder: DEFAULTS.personalize.placeholder,
      steps: DEFAULTS.personalize.steps,
      seed: DEFAULTS.personalize.seed,
      classWord: '',
      status: 'idle',
      stage: null,
      jobId: null,
      step: 0,
      totalSteps: DEFAULTS.personalize.steps,
      nearest: [],
      start: null,
      losses: [],
      savedId: null,
    },
    setPersonalize(p) {
      const prev = get().personalize.placeholder;
      patch('personalize', p);
      // Keep the prompt's placeholder in step with the token being typed.
      if (p.placeholder !== undefined && p.placeholder && prev && get().generate.prompt.includes(prev)) {
        patch('generate', { prompt: get().generate.prompt.replaceAll(prev, p.placeholder) });
      }
    },
    async startPersonalize() {
      const s = get();
      const img = s.photo.image;
      if (s.personalize.status === 'running' || !img || s.pack.status !== 'done') return;
      // The placeholder, the class word and the step count are checked by the worker, which
      // refuses a bad one before tuning starts, naming the problem; that message is shown.
      const placeholder = s.personalize.placeholder.trim();
      const classWord = s.personalize.classWord.trim();
      const { steps, seed } = s.personalize;
      const jobId = newJobId('personalize');
      get().clearNotices('personalize');
      patch('personalize', {
        status: 'running',
        stage: 'encoding',
        jobId,
        step: 0,
        totalSteps: steps,
        nearest: [],
        start: null,
        losses: [],
        savedId: null,
      });
      const saved = async (concept: ConceptData, tunedSteps: number): Promise<void> => {
        const id = await get().saveConcept(concept, {
          settings: {
            steps: tunedSteps,
            seed,
            crop: s.photo.crop,
            source: { name: s.photo.fileName ?? '', width: img.width, height: img.height },
          },
        });
        patch('personalize', { savedId: id });
        selectConcept(set, get, id, concept.blend);
      };
      let concept: ConceptData;
      try {
        concept = await workerApi().personalize(
          jobId,
          {
            image: img.bytes,
            mime: img.mime,
            crop: s.photo.crop,
            placeholder,
            steps,
            seed,
            ...(classWord ? { classWord } : {}),
          },
          progressCallback((p: PersonalizeProgress) => {
            if (get().personalize.jobId !== jobId) return;
            if (p.stage === 'nearest') patch('personalize', { stage: p.stage, nearest: p.words, start: p.start });
            else if (p.stage === 'tuning') {
              const losses = get().personalize.losses.slice(0, p.step - 1);
              losses[p.step - 1] = p.loss;
              patch('personalize', { stage: p.stage, step: p.step, totalSteps: p.steps, losses });
            } else patch('personalize', { stage: p.stage });
          }),
        );
      } catch (err) {
        if (get().personalize.jobId !== jobId) return;
        const e = toWorkerError(err);
        patch('personalize', { status: e.kind === 'cancelled' ? 'cancelled' : 'failed', jobId: null });
        if (e.kind !== 'cancelled') get().notify(workerNotice('personalize', WORKER_DOING.personalize, e));
        if (!e.fallback) return;
        // Tuning diverged, but the starting point (the encoder's prediction, or the class
        // word) is a usable concept: keep it.
        const fallback = e.fallback;
        patch('personalize', { nearest: fallback.nearestWords });
        try {
          await saved(fallback, 0);
          get().notify(NOTICES.savedFallback(fallback.start?.kind === 'class-word' ? fallback.start.word : null));
        } catch {
          // saveConcept has put the reason in the message area.
        }
        return;
      }
      if (get().personalize.jobId !== jobId) return;
      patch('personalize', {
        status: 'done',
        stage: 'done',
        jobId: null,
        nearest: concept.nearestWords,
        start: concept.start ?? null,
        losses: concept.lossCurve,
      });
      try {
        await saved(concept, steps);
      } catch {
        // saveConcept has put the reason in the message area; the result is still on screen.
      }
    },
    cancelPersonalize() {
      const { jobId } = get().personalize;
      if (!jobId) return;
      cancelWorkerJob(jobId);
      patch('personalize', { status: 'cancelled', jobId: null });
    },
  };
};
