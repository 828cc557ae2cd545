// The Generate step: the settings form, the concept to generate with, and the run in the
// worker (its progress previews). Finished images go to the gallery (gallery-slice.ts).
import type { GenerateRequest, ImageResult, RngName, SamplerName } from '../../domain/types.ts';
import type { ConceptRecord } from '../../storage/concept-record.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../../worker/client.ts';
import { NOTICES, PROMPTS, STORAGE_DOING, WORKER_DOING } from '../copy.ts';
import { DEFAULT_PLACEHOLDER } from './personalize-slice.ts';
import { workerNotice } from '../messages.ts';
import type { JobStatus, Slice } from './app-state.ts';
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
  setGenerate<K extends GenerateField>(field: K, value: GenerateState[K]): void;
  rollSeed(): void;
  startGenerate(): Promise<void>;
  cancelGenerate(): void;
}

const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];

export const createGenerateSlice: Slice<GenerateSlice> = (set, get) => {
  const patch = patcher(set);
  return {
    generate: {
      prompt: PROMPTS.starter(DEFAULT_PLACEHOLDER),
      negativePrompt: '',
      steps: 25,
      guidance: 7.5,
      seed: 42,
      sampler: 'dpmpp-2m',
      blend: 0.25,
      batch: 1,
      // Measured faster than onnxruntime-web's WebGPU EP on the adapters here (bench pipeline);
      // ONNX Runtime stays one click away.
      runtime: 'engine',
      rng: 'philox',
      conceptId: null,
      status: 'idle',
      jobId: null,
      step: 0,
      totalSteps: 0,
      previews: [],
    },
    setGenerate(field, value) {
      patch('generate', { [field]: value } as Partial<GenerateState>);
    },
    rollSeed() {
      patch('generate', { seed: randomSeed() });
    },
    async startGenerate() {
      const s = get();
      const g = s.generate;
      if (g.status === 'running' || s.pack.status !== 'done') return;
      if (!g.prompt.trim()) {
        get().notify(NOTICES.emptyPrompt());
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
        if (!g.prompt.includes(concept.placeholder)) get().notify(NOTICES.placeholderMissing(concept));
        const pack = s.pack.summary;
        if (pack && pack.hash !== concept.packHash) {
          get().notify(NOTICES.wrongPack(concept, pack.id));
          return;
        }
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
