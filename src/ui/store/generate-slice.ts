// The Generate step: the settings form, the concept to generate with, and the run in the
// worker (its progress previews). Finished images go to the gallery (gallery-slice.ts).
import { DEFAULTS } from '../../domain/defaults.ts';
import type {
  GenerateRequest,
  GenerateSettings,
  ImageResult,
  PackSummary,
  RngName,
  SamplerName,
} from '../../domain/types.ts';
import type { ConceptRecord } from '../../storage/concept-record.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../../worker/client.ts';
import { NOTICES, PROMPTS, STORAGE_DOING, WORKER_DOING } from '../copy.ts';
import { workerNotice } from '../messages.ts';
import type { GetState, JobStatus, SetState, Slice } from './app-state.ts';
import { needLibrary, storageFailure } from './library-access.ts';
import { cancelWorkerJob, patcher } from './patch.ts';

export interface GenerateState {
  prompt: string;
  negativePrompt: string;
  steps: number;
  guidance: number;
  seed: number;
  sampler: SamplerName;
  blend: number;
  batch: number;
  runtime: 'onnx' | 'engine';
  /** How the seed becomes x_T: Likeness' Philox stream, or torch's CPU generator (same x_T as diffusers). */
  rng: RngName;
  /** Library concept to use; null generates without one. */
  conceptId: string | null;
  status: JobStatus;
  jobId: string | null;
  step: number;
  totalSteps: number;
  previews: ImageResult[];
}

export type GenerateField =
  | 'prompt'
  | 'negativePrompt'
  | 'steps'
  | 'guidance'
  | 'seed'
  | 'sampler'
  | 'blend'
  | 'batch'
  | 'runtime'
  | 'rng'
  | 'conceptId';

export interface GenerateSlice {
  generate: GenerateState;
  /** Choosing a concept (conceptId) also sets the blend to the concept's own. */
  setGenerate<K extends GenerateField>(field: K, value: GenerateState[K]): void;
  rollSeed(): void;
  startGenerate(): Promise<void>;
  cancelGenerate(): void;
}

/** The generation settings the loaded pack proposes, or the defaults table's before one is loaded. */
export function generateSettings(pack: PackSummary | null): GenerateSettings {
  if (pack) return pack.defaults;
  const d = DEFAULTS.generate;
  return { steps: d.steps, guidance: d.guidance, sampler: d.sampler, blend: d.generateBlend, batch: d.batch };
}

const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];

/** The read of the last chosen concept's blend while it runs; a generation started meanwhile waits for it. */
let conceptBlend: Promise<void> | null = null;

/**
 * Chooses the library concept to generate with (null: none). As in the CLI, a concept
 * brings its own stored blend α; it is read from the library unless the caller has it.
 */
export function selectConcept(set: SetState, get: GetState, id: string | null, blend?: number): void {
  const patch = patcher(set);
  patch('generate', { conceptId: id, ...(blend === undefined ? {} : { blend }) });
  if (id === null || blend !== undefined) return;
  const read: Promise<void> = needLibrary(get)
    .then((lib) => lib.get(id))
    .then(
      (record) => {
        if (get().generate.conceptId === id) patch('generate', { blend: record.blend });
      },
      (err: unknown) => {
        storageFailure(get, err, STORAGE_DOING.read);
      },
    )
    .finally(() => {
      if (conceptBlend === read) conceptBlend = null;
    });
  conceptBlend = read;
}

export const createGenerateSlice: Slice<GenerateSlice> = (set, get) => {
  const patch = patcher(set);
  const d = DEFAULTS.generate;
  return {
    generate: {
      prompt: PROMPTS.starter(DEFAULTS.personalize.placeholder),
      negativePrompt: d.negativePrompt,
      ...generateSettings(null),
      seed: d.seed,
      runtime: d.runtime,
      rng: d.rng,
      conceptId: null,
      status: 'idle',
      jobId: null,
      step: 0,
      totalSteps: 0,
      previews: [],
    },
    setGenerate(field, value) {
      if (field === 'conceptId') selectConcept(set, get, value as string | null);
      else patch('generate', { [field]: value });
    },
    rollSeed() {
      patch('generate', { seed: randomSeed() });
    },
    async startGenerate() {
      if (conceptBlend) await conceptBlend;
      const s = get();
      const g = s.generate;
      if (g.status === 'running' || s.pack.status !== 'done') return;
      if (!g.prompt.trim()) {
        get().notify(NOTICES.emptyPrompt(s.personalize.placeholder));
        return;
      }
      get().clearNotices('generate');
      let concept: ConceptRecord | null = null;
      if (g.conceptId) {
        try {
          concept = await (await needLibrary(get)).get(g.conceptId);
        } catch (err) {
          storageFailure(get, err, STORAGE_DOING.read);
          return;
        }
        // Advice only: the worker generates either way. Whether the concept fits the loaded
        // pack is the worker's check; its refusal is shown below.
        if (!g.prompt.includes(concept.placeholder)) get().notify(NOTICES.placeholderMissing(concept));
      }
      const jobId = newJobId('generate');
      const request: GenerateRequest = {
        prompt: g.prompt,
        negativePrompt: g.negativePrompt,
        steps: g.steps,
        guidance: g.guidance,
        seed: g.seed,
        sampler: g.sampler,
        blend: g.blend,
        batch: g.batch,
        runtime: g.runtime,
        rng: g.rng,
        concept,
      };
      patch('generate', { status: 'running', jobId, step: 0, totalSteps: g.steps, previews: [] });
      try {
        const images = await workerApi().generate(
          jobId,
          request,
          progressCallback((p) => {
            if (get().generate.jobId === jobId)
              patch('generate', { step: p.step, totalSteps: p.steps, previews: p.previews });
          }),
        );
        if (get().generate.jobId !== jobId) return;
        patch('generate', { status: 'done', jobId: null, previews: [] });
        const { concept: _c, ...settings } = request;
        await get().addGalleryImages(
          images,
          settings,
          concept ? { id: concept.id, name: concept.name, placeholder: concept.placeholder } : null,
        );
      } catch (err) {
        if (get().generate.jobId !== jobId) return;
        const e = toWorkerError(err);
        patch('generate', { status: e.kind === 'cancelled' ? 'cancelled' : 'failed', jobId: null });
        if (e.kind !== 'cancelled') get().notify(workerNotice('generate', WORKER_DOING.generate, e));
      }
    },
    cancelGenerate() {
      const { jobId } = get().generate;
      if (!jobId) return;
      cancelWorkerJob(jobId);
      patch('generate', { status: 'cancelled', jobId: null });
    },
  };
};
