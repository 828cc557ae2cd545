// Application state. Components read it only through this store and change it only through
// its actions; the worker and the library are reached only from here. The state is plain
// data (no tensors on the GPU, no class instances) so it can be inspected and tested.
import { create } from 'zustand';
import {
  conceptData,
  exportConceptFile,
  conceptFileName,
  defaultSettings,
  type ConceptNaming,
  type ImportedConcept,
} from '../storage/concept-file.ts';
import { importConceptBlob } from '../storage/concept-file-blob.ts';
import { formatBytes } from './format.ts';
import { bundleZip, exportBundle, safeStem } from '../storage/concept-export.ts';
import { CONCEPT_MAX_FILE_BYTES, ConceptFileError, type ConceptPackInfo } from '../storage/concept-safetensors.ts';
import { cleanName, type ConceptRecord, type ConceptSettings, type ConceptSummary } from '../storage/concept-record.ts';
import { ConceptLibrary, type StorageEstimate, type WriteHooks } from '../storage/library-db.ts';
import { StorageError, storageError, toStorageError, type StorageErrorKind } from '../storage/storage-error.ts';
import type {
  ConceptData,
  ConceptStart,
  CropRect,
  DownloadProgress,
  GenerateRequest,
  ImageResult,
  PackSource,
  PackSummary,
  PersonalizeProgress,
  RngName,
  SamplerName,
} from '../domain/types.ts';
import type { GpuReport } from '../worker/api.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../worker/client.ts';
import { clampCrop, defaultCrop } from './crop.ts';
import { generationTextEntries, imageFileName, type GenerationRecord } from '../session/generation-metadata.ts';
import { cropThumbnail, encodePng, saveFile } from './image-encode.ts';
import { workerNotice, type Notice, type NoticeArea } from './messages.ts';
import { validateUpload, type UploadProblem } from './upload-validation.ts';
import { pickedFolderKind, type PickedFolderKind } from '../packs/pack-io-browser.ts';

/** A folder the user picked, described for the Model step. */
function pickedFolder(files: File[]): PickedFolder | null {
  if (!files.length) return null;
  const first = files[0] as File & { webkitRelativePath?: string };
  const name = first.webkitRelativePath?.split('/')[0] || first.name || 'folder';
  return { name, files, bytes: files.reduce((n, f) => n + f.size, 0), kind: pickedFolderKind(files) };
}

export type StepId = 'pack' | 'photo' | 'personalize' | 'generate' | 'library';

export const STEPS: readonly { id: StepId; label: string }[] = [
  { id: 'pack', label: 'Model' },
  { id: 'photo', label: 'Photo' },
  { id: 'personalize', label: 'Personalize' },
  { id: 'generate', label: 'Generate' },
  { id: 'library', label: 'Library' },
];

export type JobStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

/** A picked folder: what it holds decides whether it is loaded (a pack) or built (a diffusers model). */
export interface PickedFolder {
  name: string;
  files: File[];
  bytes: number;
  kind: PickedFolderKind;
}

export interface PackState {
  /** files: a picked folder (a pack, or a diffusers model to build); checkpoint: a .safetensors to build. */
  sourceKind: 'bundled' | 'url' | 'files' | 'checkpoint';
  url: string;
  folder: PickedFolder | null;
  /** The single-file checkpoint, and an optional diffusers folder for its configs. */
  checkpoint: File | null;
  checkpointConfig: PickedFolder | null;
  /** For a model without image_encoder/: a CLIPVisionModelWithProjection folder. */
  imageEncoder: PickedFolder | null;
  status: JobStatus;
  jobId: string | null;
  progress: DownloadProgress | null;
  summary: PackSummary | null;
}

export interface PhotoState {
  status: 'empty' | 'checking' | 'ready' | 'rejected';
  fileName: string | null;
  problem: UploadProblem | null;
  /** Oriented size (what the preview shows and the crop is measured in). */
  image: { bytes: Uint8Array; mime: string; width: number; height: number; url: string } | null;
  crop: CropRect | null;
}

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

export interface GalleryItem {
  id: string;
  /** Object URL of the PNG (settings embedded). */
  url: string;
  png: Blob;
  fileName: string;
  record: GenerationRecord;
}

export interface LibraryState {
  status: 'loading' | 'ready' | 'unavailable';
  concepts: ConceptSummary[];
  estimate: StorageEstimate | null;
  /** Whether the browser promised not to evict the library (null: unknown / no API). */
  persisted: boolean | null;
  /** What is being written right now, for the status line. */
  busy: string | null;
  renaming: { id: string; draft: string } | null;
  confirmingDelete: string | null;
  /** The format "Export for other tools" writes. */
  exportFormat: OtherToolFormat;
  /** The word to write in prompts for an imported LoRA / embedding ('' = the file's own, else its name). */
  importWord: string;
  /** Import only the parts of another tool's LoRA Likeness can apply (no text encoder, attention only). */
  importPartial: boolean;
  /** The concept's look at blend 1 (how other tools apply it), generated on request. */
  blendOne: { id: string; status: 'running' | 'done' | 'failed'; image: ImageResult | null } | null;
}

export type OtherToolFormat = 'diffusers' | 'a1111';

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

export interface AppState {
  step: StepId;
  gpu: { status: 'probing' } | { status: 'done'; report: GpuReport };
  pack: PackState;
  photo: PhotoState;
  personalize: PersonalizeState;
  generate: GenerateState;
  gallery: GalleryItem[];
  library: LibraryState;
  notices: Notice[];

  goTo(step: StepId): void;
  probeGpu(): Promise<void>;
  notify(n: Omit<Notice, 'id'>): void;
  dismiss(id: number): void;
  clearNotices(area: NoticeArea): void;

  setPackSource(kind: PackState['sourceKind']): void;
  setPackUrl(url: string): void;
  setPackFolder(files: File[]): void;
  setPackCheckpoint(file: File | null): void;
  setPackCheckpointConfig(files: File[]): void;
  setPackImageEncoder(files: File[]): void;
  loadPack(): Promise<void>;
  cancelPack(): void;

  choosePhoto(file: File): Promise<void>;
  clearPhoto(): void;
  setCrop(crop: CropRect): void;

  setPersonalize(patch: Partial<Pick<PersonalizeState, 'placeholder' | 'steps' | 'seed' | 'classWord'>>): void;
  startPersonalize(): Promise<void>;
  cancelPersonalize(): void;

  setGenerate<K extends GenerateField>(field: K, value: GenerateState[K]): void;
  rollSeed(): void;
  startGenerate(): Promise<void>;
  cancelGenerate(): void;
  addGalleryImages(
    images: ImageResult[],
    request: Omit<GenerateRequest, 'concept'>,
    concept: GenerationRecord['concept'],
  ): Promise<void>;
  downloadImage(id: string): void;
  removeImage(id: string): void;

  initLibrary(): Promise<void>;
  refreshEstimate(): Promise<void>;
  saveConcept(
    concept: ConceptData,
    options?: { name?: string; settings?: Partial<ConceptSettings> },
    hooks?: WriteHooks,
  ): Promise<string>;
  startRename(id: string): void;
  setRenameDraft(draft: string): void;
  commitRename(): Promise<void>;
  cancelRename(): void;
  askDelete(id: string | null): void;
  deleteConcept(id: string): Promise<void>;
  exportConcept(id: string, naming: ConceptNaming): Promise<void>;
  setExportFormat(format: OtherToolFormat): void;
  setImportWord(word: string): void;
  setImportPartial(partial: boolean): void;
  /** A zip for diffusers or A1111 / ComfyUI (storage/concept-export.ts). */
  exportForOtherTools(id: string): Promise<void>;
  /** Generates the concept at blend 1 (its look in other tools) for the library card. */
  previewBlendOne(id: string): Promise<void>;
  /** Likeness concept files are imported as they are; other tools' LoRA/embedding files through the worker. */
  importConcepts(files: File[]): Promise<void>;
  useConcept(id: string): void;
}

export const DEFAULT_PLACEHOLDER = 'S*';
const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];

const STORAGE_TITLES: Record<StorageErrorKind, string> = {
  quota: 'Storage is full',
  unavailable: 'The library cannot be used in this window',
  'newer-schema': 'The library is from a newer Likeness',
  corrupt: 'A stored concept is damaged',
  'not-found': 'That concept is gone',
  'bad-file': 'That file was refused',
  aborted: 'The write was interrupted',
  unknown: 'The library could not be changed',
};

let library: ConceptLibrary | null = null;
let libraryOpening: Promise<ConceptLibrary> | null = null;
let noticeId = 0;
let photoTicket = 0;

export const useAppStore = create<AppState>((set, get) => {
  const patch = <K extends 'pack' | 'photo' | 'personalize' | 'generate' | 'library'>(
    key: K,
    p: Partial<AppState[K]>,
  ) => set((s) => ({ [key]: { ...s[key], ...p } }) as Pick<AppState, K>);

  /** The open library; opens it first if needed, rejecting with the StorageError that stopped it. */
  const needLibrary = (): Promise<ConceptLibrary> => {
    if (library) return Promise.resolve(library);
    // initLibrary sets libraryOpening before its first await.
    if (!libraryOpening) void get().initLibrary();
    return libraryOpening!;
  };

  const storageFailure = (err: unknown, doing: string) => {
    const e = toStorageError(err, doing);
    get().notify({
      area: 'library',
      tone: 'error',
      kind: e.kind,
      title: STORAGE_TITLES[e.kind],
      message: e.message,
      hint: e.hint,
    });
    return e;
  };

  /** What an imported concept file is checked against: the loaded pack, or null before one is loaded. */
  const conceptPackInfo = (): ConceptPackInfo | null => {
    const s = get().pack.summary;
    return s
      ? {
          id: s.id,
          hash: s.hash,
          tokenDim: s.tokenDim,
          rank: s.rank,
          targets: s.loraTargets,
          vocabulary: { vocabSize: s.vocabSize },
        }
      : null;
  };

  /** Other tools' files (a LoRA and/or an embedding dropped together) as one new concept. */
  const importForeign = async (files: File[]): Promise<void> => {
    const names = files.map((f) => `“${f.name}”`).join(' and ');
    if (get().pack.status !== 'done') {
      get().notify({
        area: 'library',
        tone: 'error',
        kind: 'bad-file',
        title: 'Load a model first',
        message: `${names} cannot be imported yet: a LoRA or embedding is checked against the loaded model pack.`,
        hint: 'Load the model pack in the Model step, then import the files again.',
      });
      return;
    }
    // Sizes before reads: a whole model dropped here is refused without being loaded.
    const huge = files.find((f) => f.size > CONCEPT_MAX_FILE_BYTES);
    if (huge) {
      get().notify({
        area: 'library',
        tone: 'error',
        kind: 'bad-file',
        title: 'Not a LoRA or embedding',
        message: `“${huge.name}” is ${formatBytes(huge.size)}, more than any LoRA or embedding Likeness imports (${formatBytes(CONCEPT_MAX_FILE_BYTES)}); it is probably a whole model.`,
        hint: 'Load models in the Model step; drop concept, LoRA or embedding files here.',
      });
      return;
    }
    patch('library', { busy: `Importing ${names}…` });
    try {
      const word = get().library.importWord.trim();
      const concept = await workerApi().importForeign(newJobId('import'), {
        files: await Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) }))),
        ...(word ? { placeholder: word } : {}),
        ...(get().library.importPartial ? { dropTextEncoder: true, dropOtherLayers: true } : {}),
      });
      const now = Date.now();
      const record: ConceptRecord = {
        ...concept,
        id: crypto.randomUUID(),
        name: cleanName(safeStem(files[0].name.replace(/\.safetensors$/i, ''), concept.placeholder)) ?? concept.placeholder,
        thumbnail: new Uint8Array(0),
        createdAt: now,
        updatedAt: now,
        settings: defaultSettings(concept),
      };
      const concepts = await (await needLibrary()).save(record);
      patch('library', { concepts, busy: null });
    } catch (err) {
      patch('library', { busy: null });
      if (err instanceof StorageError) {
        storageFailure(err, `import ${names}`);
        return;
      }
      get().notify({
        ...workerNotice('library', `importing ${names}`, toWorkerError(err)),
        title: `${names} was refused`,
      });
    }
  };

  return {
    step: 'pack',
    gpu: { status: 'probing' },
    pack: {
      sourceKind: 'bundled',
      url: '',
      folder: null,
      checkpoint: null,
      checkpointConfig: null,
      imageEncoder: null,
      status: 'idle',
      jobId: null,
      progress: null,
      summary: null,
    },
    photo: { status: 'empty', fileName: null, problem: null, image: null, crop: null },
    personalize: {
      placeholder: DEFAULT_PLACEHOLDER,
      steps: 12,
      seed: 0,
      classWord: '',
      status: 'idle',
      stage: null,
      jobId: null,
      step: 0,
      totalSteps: 12,
      nearest: [],
      start: null,
      losses: [],
      savedId: null,
    },
    generate: {
      prompt: `a watercolor painting of ${DEFAULT_PLACEHOLDER} in Paris`,
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
    gallery: [],
    library: {
      status: 'loading',
      concepts: [],
      estimate: null,
      persisted: null,
      busy: null,
      renaming: null,
      confirmingDelete: null,
      exportFormat: 'diffusers',
      importWord: '',
      importPartial: false,
      blendOne: null,
    },
    notices: [],

    goTo(step) {
      set({ step });
    },

    async probeGpu() {
      set({ gpu: { status: 'probing' } });
      let report: GpuReport;
      try {
        report = await workerApi().probeGpu();
      } catch (err) {
        report = { ok: false, error: toWorkerError(err).message };
      }
      set({ gpu: { status: 'done', report } });
      if (!report.ok) patch('generate', { runtime: 'onnx' });
    },

    notify(n) {
      // One message per area and kind: a repeated failure replaces the old one.
      set((s) => ({
        notices: [...s.notices.filter((x) => !(x.area === n.area && x.kind === n.kind)), { ...n, id: ++noticeId }],
      }));
    },
    dismiss(id) {
      set((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
    },
    clearNotices(area) {
      set((s) => ({ notices: s.notices.filter((n) => n.area !== area) }));
    },

    // ------------------------------------------------------------------ pack
    setPackSource(sourceKind) {
      patch('pack', { sourceKind });
    },
    setPackUrl(url) {
      patch('pack', { url });
    },
    setPackFolder(files) {
      patch('pack', { folder: pickedFolder(files) });
    },
    setPackCheckpoint(file) {
      patch('pack', { checkpoint: file });
    },
    setPackCheckpointConfig(files) {
      patch('pack', { checkpointConfig: pickedFolder(files) });
    },
    setPackImageEncoder(files) {
      patch('pack', { imageEncoder: pickedFolder(files) });
    },
    async loadPack() {
      const { pack } = get();
      if (pack.status === 'running') return;
      let source: PackSource;
      if (pack.sourceKind === 'url') {
        const url = pack.url.trim();
        let ok: boolean;
        try {
          const u = new URL(url, location.href);
          ok = u.protocol === 'https:' || u.protocol === 'http:';
        } catch {
          ok = false;
        }
        if (!url || !ok) {
          get().notify({
            area: 'pack',
            tone: 'error',
            kind: 'bad-url',
            title: 'That is not a pack address',
            message: url ? `“${url}” is not an http(s) address.` : 'Enter the address of a pack’s manifest.json first.',
            hint: 'Paste the address of a model pack folder or of its manifest.json, e.g. https://example.com/packs/sd15/manifest.json.',
          });
          return;
        }
        source = { kind: 'url', url };
      } else if (pack.sourceKind === 'files') {
        if (!pack.folder) {
          get().notify({
            area: 'pack',
            tone: 'error',
            kind: 'no-folder',
            title: 'No folder chosen',
            message: 'Choose the folder that holds the pack’s manifest.json first.',
            hint: null,
          });
          return;
        }
        if (pack.folder.kind === 'unknown') {
          get().notify({
            area: 'pack',
            tone: 'error',
            kind: 'bad-folder',
            title: 'That folder is neither a pack nor a model',
            message: `“${pack.folder.name}” has no manifest.json (a Likeness pack) and no unet/config.json (a diffusers model).`,
            hint: 'Choose a pack folder, or a Stable Diffusion model folder in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/).',
          });
          return;
        }
        source =
          pack.folder.kind === 'pack'
            ? { kind: 'files', files: pack.folder.files }
            : {
                kind: 'build',
                model: {
                  kind: 'diffusers',
                  files: pack.folder.files,
                  ...(pack.imageEncoder ? { imageEncoderFiles: pack.imageEncoder.files } : {}),
                },
              };
      } else if (pack.sourceKind === 'checkpoint') {
        if (!pack.checkpoint) {
          get().notify({
            area: 'pack',
            tone: 'error',
            kind: 'no-checkpoint',
            title: 'No checkpoint chosen',
            message: 'Choose a Stable Diffusion 1.x or 2.x .safetensors file first.',
            hint: null,
          });
          return;
        }
        source = {
          kind: 'build',
          model: {
            kind: 'single-file',
            file: pack.checkpoint,
            ...(pack.checkpointConfig ? { configFiles: pack.checkpointConfig.files } : {}),
            ...(pack.imageEncoder ? { imageEncoderFiles: pack.imageEncoder.files } : {}),
          },
        };
      } else {
        source = { kind: 'bundled' };
      }
      const jobId = newJobId('pack');
      get().clearNotices('pack');
      patch('pack', { status: 'running', jobId, progress: null });
      try {
        const summary = await workerApi().loadPack(
          jobId,
          source,
          progressCallback((p: DownloadProgress) => {
            if (get().pack.jobId === jobId) patch('pack', { progress: p });
          }),
        );
        if (get().pack.jobId !== jobId) return;
        patch('pack', { status: 'done', summary, jobId: null });
        const g = get().generate;
        patch('generate', {
          ...summary.defaults,
          prompt: g.prompt.replaceAll(get().personalize.placeholder, summary.placeholderDefault),
        });
        patch('personalize', { placeholder: summary.placeholderDefault, steps: summary.tuningSteps });
        if (summary.storageNote) {
          get().notify({
            area: 'pack',
            tone: 'warning',
            kind: 'pack-in-memory',
            title: 'The model is not kept for next time',
            message: summary.storageNote,
            hint: 'Allow this site to store data (or leave private browsing) to keep the model and work offline.',
          });
        }
        if (summary.offline) {
          get().notify({
            area: 'pack',
            tone: 'info',
            kind: 'pack-offline',
            title: 'Working offline',
            message: `The network is unreachable, so “${summary.name}” was loaded from this browser’s storage.`,
            hint: null,
          });
        }
      } catch (err) {
        if (get().pack.jobId !== jobId) return;
        const e = toWorkerError(err);
        patch('pack', { status: e.kind === 'cancelled' ? 'cancelled' : 'failed', jobId: null });
        if (e.kind !== 'cancelled') get().notify(workerNotice('pack', 'loading the model pack', e));
      }
    },
    cancelPack() {
      const { jobId } = get().pack;
      if (!jobId) return;
      void Promise.resolve(workerApi().cancel(jobId)).catch(() => {});
      patch('pack', { status: 'cancelled', jobId: null });
    },

    // ------------------------------------------------------------------ photo
    async choosePhoto(file) {
      const ticket = ++photoTicket;
      const before = get().photo;
      get().clearNotices('photo');
      patch('photo', { status: 'checking', problem: null });
      const result = await validateUpload(file, (bytes, mime) =>
        createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime })),
      );
      if (ticket !== photoTicket) {
        if (result.ok) result.upload.bitmap.close();
        return; // another file was chosen meanwhile
      }
      if (!result.ok) {
        // A photo chosen earlier stays; only the message is new.
        patch('photo', { status: before.image ? 'ready' : 'rejected', problem: result.problem });
        get().notify({
          area: 'photo',
          tone: 'error',
          kind: `upload-${result.problem.kind}`,
          title: 'This file cannot be used',
          message: result.problem.message,
          hint: result.problem.hint,
        });
        return;
      }
      const { upload } = result;
      const width = upload.bitmap.width;
      const height = upload.bitmap.height;
      upload.bitmap.close();
      if (before.image) URL.revokeObjectURL(before.image.url);
      const url = URL.createObjectURL(
        new Blob([upload.bytes as Uint8Array<ArrayBuffer>], { type: upload.header.mime }),
      );
      patch('photo', {
        status: 'ready',
        fileName: upload.name,
        problem: null,
        image: { bytes: upload.bytes, mime: upload.header.mime, width, height, url },
        crop: defaultCrop(width, height),
      });
    },
    clearPhoto() {
      const old = get().photo.image;
      if (old) URL.revokeObjectURL(old.url);
      patch('photo', { status: 'empty', fileName: null, problem: null, image: null, crop: null });
    },
    setCrop(crop) {
      const img = get().photo.image;
      if (img) patch('photo', { crop: clampCrop(crop, img.width, img.height) });
    },

    // ------------------------------------------------------------------ personalize
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
      const placeholder = s.personalize.placeholder.trim();
      if (!placeholder || /\s/.test(placeholder)) {
        get().notify({
          area: 'personalize',
          tone: 'error',
          kind: 'bad-placeholder',
          title: 'The placeholder token needs fixing',
          message: placeholder ? `“${placeholder}” contains spaces.` : 'The placeholder token is empty.',
          hint: 'Use one short word that is not an ordinary word, such as S* or <my-mug>.',
        });
        return;
      }
      const classWord = s.personalize.classWord.trim();
      if (s.pack.summary && !s.pack.summary.hasTuningEncoder && (!classWord || /\s/.test(classWord))) {
        get().notify({
          area: 'personalize',
          tone: 'error',
          kind: 'class-word',
          title: classWord ? 'The class word must be one word' : 'Say what the photo shows',
          message:
            'This model has no tuning encoder, so personalization starts from an ordinary word for the thing in the photo and tunes from there.',
          hint: 'Type one word, such as dog, mug or statue.',
        });
        return;
      }
      const jobId = newJobId('personalize');
      const steps = Math.max(1, Math.min(100, Math.round(s.personalize.steps)));
      const seed = s.personalize.seed;
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
        if (e.kind !== 'cancelled') get().notify(workerNotice('personalize', 'personalizing', e));
        if (!e.fallback) return;
        // Tuning diverged, but the starting point (the encoder's prediction, or the class
        // word) is a usable concept: keep it.
        const fallback = e.fallback;
        const word = fallback.start?.kind === 'class-word' ? fallback.start.word : null;
        patch('personalize', { nearest: fallback.nearestWords });
        try {
          const id = await get().saveConcept(fallback, {
            settings: {
              steps: 0,
              seed,
              crop: s.photo.crop,
              source: { name: s.photo.fileName ?? '', width: img.width, height: img.height },
            },
          });
          patch('personalize', { savedId: id });
          patch('generate', { conceptId: id });
          get().notify({
            area: 'personalize',
            tone: 'warning',
            kind: 'numerical-fallback',
            title: word ? 'Saved the starting word instead' : 'Saved the encoder’s guess instead',
            message: word
              ? `Tuning stopped, so the concept saved to your library is the untuned start from “${word}”.`
              : 'Tuning stopped, so the concept saved to your library is the encoder’s prediction before tuning.',
            hint: 'It usually works; for a closer likeness, personalize again with fewer steps or another seed.',
          });
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
        const id = await get().saveConcept(concept, {
          settings: {
            steps,
            seed,
            crop: s.photo.crop,
            source: { name: s.photo.fileName ?? '', width: img.width, height: img.height },
          },
        });
        patch('personalize', { savedId: id });
        patch('generate', { conceptId: id });
      } catch {
        // saveConcept has put the reason in the message area; the result is still on screen.
      }
    },
    cancelPersonalize() {
      const { jobId } = get().personalize;
      if (!jobId) return;
      void Promise.resolve(workerApi().cancel(jobId)).catch(() => {});
      patch('personalize', { status: 'cancelled', jobId: null });
    },

    // ------------------------------------------------------------------ generate
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
        get().notify({
          area: 'generate',
          tone: 'error',
          kind: 'empty-prompt',
          title: 'Write a prompt first',
          message: 'The prompt is empty.',
          hint: 'Describe the picture, e.g. “a watercolor of S* in Paris”.',
        });
        return;
      }
      get().clearNotices('generate');
      let concept: ConceptRecord | null = null;
      if (g.conceptId) {
        try {
          concept = await (await needLibrary()).get(g.conceptId);
        } catch (err) {
          storageFailure(err, 'read the concept');
          return;
        }
        if (!g.prompt.includes(concept.placeholder)) {
          get().notify({
            area: 'generate',
            tone: 'warning',
            kind: 'placeholder-missing',
            title: 'The concept is not in the prompt',
            message: `The prompt does not contain “${concept.placeholder}”, so “${concept.name}” will not appear.`,
            hint: `Add ${concept.placeholder} where the thing should be, e.g. “a photo of ${concept.placeholder} on a beach”.`,
          });
        }
        const pack = s.pack.summary;
        if (pack && pack.hash !== concept.packHash) {
          get().notify({
            area: 'generate',
            tone: 'error',
            kind: 'wrong-pack',
            title: 'This concept belongs to another model',
            message: `“${concept.name}” was made with the pack “${concept.packId}”; the loaded pack is “${pack.id}”.`,
            hint: `Load “${concept.packId}” on the Model step, or choose another concept.`,
          });
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
        if (e.kind !== 'cancelled') get().notify(workerNotice('generate', 'generating', e));
      }
    },
    cancelGenerate() {
      const { jobId } = get().generate;
      if (!jobId) return;
      void Promise.resolve(workerApi().cancel(jobId)).catch(() => {});
      patch('generate', { status: 'cancelled', jobId: null });
    },
    async addGalleryImages(images, request, concept) {
      const items: GalleryItem[] = [];
      for (const image of images) {
        const record: GenerationRecord = {
          prompt: request.prompt,
          negativePrompt: request.negativePrompt,
          steps: request.steps,
          guidance: request.guidance,
          sampler: request.sampler,
          blend: request.blend,
          batch: request.batch,
          seed: image.seed,
          runtime: request.runtime,
          rng: request.rng ?? 'philox',
          width: image.width,
          height: image.height,
          packId: get().pack.summary?.id ?? null,
          concept,
          createdAt: Date.now(),
        };
        try {
          const png = new Blob([(await encodePng(image, generationTextEntries(record))) as Uint8Array<ArrayBuffer>], {
            type: 'image/png',
          });
          items.push({
            id: newJobId('image'),
            url: URL.createObjectURL(png),
            png,
            fileName: imageFileName(record),
            record,
          });
        } catch (err) {
          get().notify({
            area: 'generate',
            tone: 'error',
            kind: 'encode',
            title: 'An image could not be saved as PNG',
            message: err instanceof Error ? err.message : String(err),
            hint: 'The browser may be short of memory; close other tabs and generate again.',
          });
        }
      }
      set((s) => ({ gallery: [...items, ...s.gallery] }));
    },
    downloadImage(id) {
      const item = get().gallery.find((g) => g.id === id);
      if (item) saveFile(item.png, item.fileName, 'image/png');
    },
    removeImage(id) {
      const item = get().gallery.find((g) => g.id === id);
      if (item) URL.revokeObjectURL(item.url);
      set((s) => ({ gallery: s.gallery.filter((g) => g.id !== id) }));
    },

    // ------------------------------------------------------------------ library
    async initLibrary() {
      libraryOpening ??= (async () => {
        try {
          const { library: lib, report } = await ConceptLibrary.open();
          library = lib;
          const concepts = await lib.list();
          patch('library', { status: 'ready', concepts });
          if (report.repaired) {
            const r = report.repaired;
            get().notify({
              area: 'library',
              tone: 'warning',
              kind: 'repaired',
              title: 'The library list was rebuilt',
              message: `The list did not match the stored concepts and was rebuilt: ${r.added} found, ${r.dropped} missing entries removed${r.quarantined ? `, ${r.quarantined} damaged concept(s) set aside` : ''}.`,
              hint: 'Your concepts are listed again. If one is missing, import it from an exported file.',
            });
          }
          void get().refreshEstimate();
          return lib;
        } catch (err) {
          libraryOpening = null;
          patch('library', { status: 'unavailable' });
          throw storageFailure(err, 'open the concept library');
        }
      })();
      await libraryOpening.catch(() => {});
    },
    async refreshEstimate() {
      try {
        const estimate = await ConceptLibrary.estimate();
        patch('library', { estimate, persisted: estimate?.persisted ?? null });
      } catch (err) {
        // The estimate is informative only, but a failure still says so.
        storageFailure(err, 'measure storage use');
      }
    },
    async saveConcept(concept, options = {}, hooks) {
      const lib = await needLibrary();
      const { photo } = get();
      let thumbnail: Uint8Array = new Uint8Array(0);
      if (photo.image && photo.crop) {
        try {
          thumbnail = await cropThumbnail(photo.image.bytes, photo.image.mime, photo.crop);
        } catch {
          // A missing thumbnail is shown as the placeholder's initial; the concept still saves.
        }
      }
      const now = Date.now();
      const p = get().personalize;
      const settings: ConceptSettings = {
        steps: p.steps,
        seed: p.seed,
        crop: photo.crop,
        source: photo.image
          ? { name: photo.fileName ?? '', width: photo.image.width, height: photo.image.height }
          : null,
        generate: null,
        ...options.settings,
      };
      const word = concept.nearestWords[0];
      const record: ConceptRecord = {
        ...concept,
        id: crypto.randomUUID(),
        name: options.name ?? (word ? `${word} (${concept.placeholder})` : concept.placeholder),
        thumbnail,
        createdAt: now,
        updatedAt: now,
        settings,
      };
      patch('library', { busy: `Saving “${record.name}”…` });
      try {
        const concepts = await lib.save(record, hooks);
        patch('library', { concepts, busy: null });
      } catch (err) {
        patch('library', { busy: null });
        throw storageFailure(err, `save “${record.name}”`);
      }
      void lib.requestPersistence().then(
        (persisted) => patch('library', { persisted }),
        (err: unknown) => storageFailure(err, 'ask the browser to keep the library'),
      );
      void get().refreshEstimate();
      return record.id;
    },
    startRename(id) {
      const c = get().library.concepts.find((x) => x.id === id);
      if (c) patch('library', { renaming: { id, draft: c.name }, confirmingDelete: null });
    },
    setRenameDraft(draft) {
      const r = get().library.renaming;
      if (r) patch('library', { renaming: { ...r, draft } });
    },
    cancelRename() {
      patch('library', { renaming: null });
    },
    async commitRename() {
      const r = get().library.renaming;
      if (!r) return;
      if (!cleanName(r.draft)) {
        get().notify({
          area: 'library',
          tone: 'error',
          kind: 'bad-name',
          title: 'A name is needed',
          message: 'A concept needs a name with at least one visible character.',
          hint: 'Type a name, or press Escape to keep the old one.',
        });
        return;
      }
      try {
        const concepts = await (await needLibrary()).rename(r.id, r.draft);
        patch('library', { concepts, renaming: null });
      } catch (err) {
        storageFailure(err, 'rename the concept');
      }
    },
    askDelete(id) {
      patch('library', { confirmingDelete: id, renaming: null });
    },
    async deleteConcept(id) {
      try {
        const concepts = await (await needLibrary()).delete(id);
        patch('library', { concepts, confirmingDelete: null });
        if (get().generate.conceptId === id) patch('generate', { conceptId: null });
        void get().refreshEstimate();
      } catch (err) {
        storageFailure(err, 'delete the concept');
      }
    },
    async exportConcept(id, naming) {
      try {
        const record = await (await needLibrary()).get(id);
        saveFile(exportConceptFile(record, naming), conceptFileName(record, naming), 'application/octet-stream');
      } catch (err) {
        storageFailure(err, 'export the concept');
      }
    },
    setExportFormat(format) {
      patch('library', { exportFormat: format });
    },
    setImportWord(word) {
      patch('library', { importWord: word });
    },
    setImportPartial(partial) {
      patch('library', { importPartial: partial });
    },
    async exportForOtherTools(id) {
      try {
        const record = await (await needLibrary()).get(id);
        const bundle = exportBundle(record, get().library.exportFormat, { name: record.name });
        saveFile(bundleZip(bundle, new Date()), `${bundle.folder}.zip`, 'application/zip');
      } catch (err) {
        if (err instanceof ConceptFileError) {
          get().notify({ area: 'library', tone: 'error', kind: 'export', title: 'That concept cannot be exported', message: err.message, hint: null });
          return;
        }
        storageFailure(err, 'export the concept');
      }
    },
    async previewBlendOne(id) {
      const s = get();
      if (s.pack.status !== 'done' || s.library.blendOne?.status === 'running') return;
      patch('library', { blendOne: { id, status: 'running', image: null } });
      try {
        const record = await (await needLibrary()).get(id);
        const d = s.pack.summary?.defaults;
        const [image] = await workerApi().generate(
          newJobId('blend-one'),
          {
            prompt: `a photo of ${record.placeholder}`,
            negativePrompt: '',
            steps: d?.steps ?? 25,
            guidance: d?.guidance ?? 7.5,
            sampler: d?.sampler ?? 'dpmpp-2m',
            blend: 1,
            batch: 1,
            seed: 0,
            runtime: s.generate.runtime,
            concept: conceptData(record),
          },
          progressCallback(() => {}),
        );
        if (get().library.blendOne?.id === id) patch('library', { blendOne: { id, status: 'done', image } });
      } catch (err) {
        if (get().library.blendOne?.id === id) patch('library', { blendOne: { id, status: 'failed', image: null } });
        get().notify(workerNotice('library', 'showing the blend-1 look', toWorkerError(err)));
      }
    },
    async importConcepts(files) {
      const foreign: File[] = [];
      for (const file of files) {
        try {
          if (!/\.safetensors$/i.test(file.name)) {
            throw new StorageError(
              'bad-file',
              `“${file.name}” is not a concept file (those end in .safetensors).`,
              'Drop a concept file exported from Likeness. To use a photo, go to the Photo step.',
            );
          }
          let imported: ImportedConcept;
          try {
            // The size is checked before the file is read: a dropped multi-GB model is not loaded.
            imported = await importConceptBlob(file, conceptPackInfo(), { newId: () => crypto.randomUUID() });
          } catch (e) {
            // Not a Likeness concept (or larger than one can be): another tool's LoRA or
            // embedding, read by the worker below, which refuses whole models by size too.
            const code = e instanceof StorageError && e.cause instanceof ConceptFileError ? e.cause.code : null;
            if (code === 'not-a-concept' || code === 'too-large') {
              foreign.push(file);
              continue;
            }
            throw e;
          }
          const { record, warnings } = imported;
          // The placeholder against the pack's vocabulary: the worker holds the tokenizer.
          const problems = await workerApi().conceptProblems({
            placeholder: record.placeholder,
            hardTokenId: record.hardTokenId,
            rank: record.rank,
            alpha: record.alpha,
            blend: record.blend,
          });
          if (problems.length) throw storageError('bad-file', `“${file.name}” was refused: ${problems.join('; ')}.`);
          patch('library', { busy: `Importing “${record.name}”…` });
          const concepts = await (await needLibrary()).save(record);
          patch('library', { concepts, busy: null });
          for (const w of warnings) {
            get().notify({
              area: 'library',
              tone: 'warning',
              kind: 'import-partial',
              title: 'Imported, with something left out',
              message: w,
              hint: null,
            });
          }
        } catch (err) {
          patch('library', { busy: null });
          storageFailure(err, `import “${file.name}”`);
        }
      }
      if (foreign.length > 0) await importForeign(foreign);
      void get().refreshEstimate();
    },
    useConcept(id) {
      const c = get().library.concepts.find((x) => x.id === id);
      if (!c) return;
      const g = get().generate;
      const prompt = g.prompt.includes(c.placeholder) ? g.prompt : `a photo of ${c.placeholder}`;
      patch('generate', { conceptId: id, prompt });
      set({ step: 'generate' });
    },
  };
});
