// What the store says to the person using the app, in one place: step names, example
// prompts, status lines, every notice the store raises itself and the advice for each kind
// of worker error. The store decides when to say something; this file decides how it is
// worded. Worker failures keep the worker's own message, with the title and advice below.
import type { ErrorKind } from '../domain/types.ts';
import type { StorageErrorKind } from '../storage/storage-error.ts';
import type { Notice } from './messages.ts';
import type { StepId } from './store/navigation-slice.ts';

type NoticeText = Omit<Notice, 'id'>;

/** A file or other name as the app quotes it. */
export const quoted = (name: string): string => `“${name}”`;

/** Several files named in one sentence: “a” and “b”. */
export const quotedList = (names: string[]): string => names.map(quoted).join(' and ');

export const STEP_LABELS: Readonly<Record<StepId, string>> = {
  pack: 'Model',
  photo: 'Photo',
  personalize: 'Personalize',
  generate: 'Generate',
  library: 'Library',
};

/** Prompts the app writes for the person: the starting example, and one that shows a concept. */
export const PROMPTS = {
  starter: (placeholder: string) => `a watercolor painting of ${placeholder} in Paris`,
  concept: (placeholder: string) => `a photo of ${placeholder}`,
} as const;

/** The name a newly personalized concept gets: its nearest word and its placeholder. */
export const newConceptName = (nearestWord: string | undefined, placeholder: string): string =>
  nearestWord ? `${nearestWord} (${placeholder})` : placeholder;

/** The library's status line while something is written. */
export const BUSY = {
  saving: (name: string) => `Saving ${quoted(name)}…`,
  /** `what` is already quoted (one name, or several from quotedList). */
  importing: (what: string) => `Importing ${what}…`,
} as const;

/** What the app was doing when the worker failed: the end of the notice title, "(…)". */
export const WORKER_DOING = {
  loadPack: 'loading the model pack',
  personalize: 'personalizing',
  generate: 'generating',
  blendOne: 'showing the blend-1 look',
  importForeign: (names: string) => `importing ${names}`,
} as const;

/** What the app was doing when storage failed: "Could not …" in the storage error's message. */
export const STORAGE_DOING = {
  open: 'open the concept library',
  estimate: 'measure storage use',
  persist: 'ask the browser to keep the library',
  save: (name: string) => `save ${quoted(name)}`,
  read: 'read the concept',
  rename: 'rename the concept',
  delete: 'delete the concept',
  export: 'export the concept',
  /** `what` is already quoted. */
  import: (what: string) => `import ${what}`,
} as const;

/** The title and the advice for each kind of worker error (messages.ts's workerNotice). */
export const WORKER_ERROR_ADVICE: Readonly<Record<ErrorKind, { title: string; hint: string }>> = {
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

/** The title of a library notice for each kind of storage failure. */
export const STORAGE_TITLES: Readonly<Record<StorageErrorKind, string>> = {
  quota: 'Storage is full',
  unavailable: 'The library cannot be used in this window',
  'newer-schema': 'The library is from a newer Likeness',
  corrupt: 'A stored concept is damaged',
  'not-found': 'That concept is gone',
  'bad-file': 'That file was refused',
  aborted: 'The write was interrupted',
  unknown: 'The library could not be changed',
};

/** Library import refusals the store words itself (StorageError message and hint). */
export const IMPORT_REFUSALS = {
  notConceptFile: (fileName: string) => ({
    message: `${quoted(fileName)} is not a concept file (those end in .safetensors).`,
    hint: 'Drop a concept file exported from Likeness. To use a photo, go to the Photo step.',
  }),
  problems: (fileName: string, problems: string[]) => `${quoted(fileName)} was refused: ${problems.join('; ')}.`,
  /** The title of a worker notice for other tools' files that were refused. */
  foreignTitle: (names: string) => `${names} was refused`,
} as const;

/** Every notice the store raises on its own (worker and storage failures excepted). */
export const NOTICES = {
  // ---------------------------------------------------------------- pack
  noPackUrl: (): NoticeText => ({
    area: 'pack',
    tone: 'error',
    kind: 'bad-url',
    title: 'That is not a pack address',
    message: 'Enter the address of a pack’s manifest.json first.',
    hint: 'Paste the address of a model pack folder or of its manifest.json, e.g. https://example.com/packs/sd15/manifest.json.',
  }),
  noPackFolder: (): NoticeText => ({
    area: 'pack',
    tone: 'error',
    kind: 'no-folder',
    title: 'No folder chosen',
    message: 'Choose the folder that holds the pack’s manifest.json first.',
    hint: null,
  }),
  notPackOrModel: (folder: string): NoticeText => ({
    area: 'pack',
    tone: 'error',
    kind: 'bad-folder',
    title: 'That folder is neither a pack nor a model',
    message: `${quoted(folder)} has no manifest.json (a Likeness pack) and no unet/config.json (a diffusers model).`,
    hint: 'Choose a pack folder, or a Stable Diffusion model folder in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/).',
  }),
  noCheckpoint: (): NoticeText => ({
    area: 'pack',
    tone: 'error',
    kind: 'no-checkpoint',
    title: 'No checkpoint chosen',
    message: 'Choose a Stable Diffusion 1.x or 2.x .safetensors file first.',
    hint: null,
  }),
  packInMemory: (storageNote: string): NoticeText => ({
    area: 'pack',
    tone: 'warning',
    kind: 'pack-in-memory',
    title: 'The model is not kept for next time',
    message: storageNote,
    hint: 'Allow this site to store data (or leave private browsing) to keep the model and work offline.',
  }),
  packOffline: (packName: string): NoticeText => ({
    area: 'pack',
    tone: 'info',
    kind: 'pack-offline',
    title: 'Working offline',
    message: `The network is unreachable, so ${quoted(packName)} was loaded from this browser’s storage.`,
    hint: null,
  }),

  // ---------------------------------------------------------------- photo
  uploadRefused: (problem: { kind: string; message: string; hint: string | null }): NoticeText => ({
    area: 'photo',
    tone: 'error',
    kind: `upload-${problem.kind}`,
    title: 'This file cannot be used',
    message: problem.message,
    hint: problem.hint,
  }),

  // ---------------------------------------------------------------- personalize
  /** Tuning diverged and its starting point was saved: the class word, or the encoder's prediction. */
  savedFallback: (classWord: string | null): NoticeText => ({
    area: 'personalize',
    tone: 'warning',
    kind: 'numerical-fallback',
    title: classWord ? 'Saved the starting word instead' : 'Saved the encoder’s guess instead',
    message: classWord
      ? `Tuning stopped, so the concept saved to your library is the untuned start from ${quoted(classWord)}.`
      : 'Tuning stopped, so the concept saved to your library is the encoder’s prediction before tuning.',
    hint: 'It usually works; for a closer likeness, personalize again with fewer steps or another seed.',
  }),

  // ---------------------------------------------------------------- generate
  emptyPrompt: (placeholder: string): NoticeText => ({
    area: 'generate',
    tone: 'error',
    kind: 'empty-prompt',
    title: 'Write a prompt first',
    message: 'The prompt is empty.',
    hint: `Describe the picture, e.g. “a watercolor of ${placeholder} in Paris”.`,
  }),
  placeholderMissing: (concept: { name: string; placeholder: string }): NoticeText => ({
    area: 'generate',
    tone: 'warning',
    kind: 'placeholder-missing',
    title: 'The concept is not in the prompt',
    message: `The prompt does not contain ${quoted(concept.placeholder)}, so ${quoted(concept.name)} will not appear.`,
    hint: `Add ${concept.placeholder} where the thing should be, e.g. “${PROMPTS.concept(concept.placeholder)} on a beach”.`,
  }),
  pngFailed: (detail: string): NoticeText => ({
    area: 'generate',
    tone: 'error',
    kind: 'encode',
    title: 'An image could not be saved as PNG',
    message: detail,
    hint: 'The browser may be short of memory; close other tabs and generate again.',
  }),

  // ---------------------------------------------------------------- library
  libraryRepaired: (r: { added: number; dropped: number; quarantined: number }): NoticeText => ({
    area: 'library',
    tone: 'warning',
    kind: 'repaired',
    title: 'The library list was rebuilt',
    message: `The list did not match the stored concepts and was rebuilt: ${r.added} found, ${r.dropped} missing entries removed${r.quarantined ? `, ${r.quarantined} damaged concept(s) set aside` : ''}.`,
    hint: 'Your concepts are listed again. If one is missing, import it from an exported file.',
  }),
  emptyName: (): NoticeText => ({
    area: 'library',
    tone: 'error',
    kind: 'bad-name',
    title: 'A name is needed',
    message: 'A concept needs a name with at least one visible character.',
    hint: 'Type a name, or press Escape to keep the old one.',
  }),
  exportRefused: (detail: string): NoticeText => ({
    area: 'library',
    tone: 'error',
    kind: 'export',
    title: 'That concept cannot be exported',
    message: detail,
    hint: null,
  }),
  importedPartly: (warning: string): NoticeText => ({
    area: 'library',
    tone: 'warning',
    kind: 'import-partial',
    title: 'Imported, with something left out',
    message: warning,
    hint: null,
  }),
  /** Other tools' files are checked against the loaded pack, so one must be loaded. */
  foreignNeedsPack: (names: string): NoticeText => ({
    area: 'library',
    tone: 'error',
    kind: 'bad-file',
    title: 'Load a model first',
    message: `${names} cannot be imported yet: a LoRA or embedding is checked against the loaded model pack.`,
    hint: 'Load the model pack in the Model step, then import the files again.',
  }),
  /** A file far larger than any LoRA or embedding: refused from its size, before it is read. */
  foreignTooLarge: (fileName: string, size: string, max: string): NoticeText => ({
    area: 'library',
    tone: 'error',
    kind: 'bad-file',
    title: 'Not a LoRA or embedding',
    message: `${quoted(fileName)} is ${size}, more than any LoRA or embedding Likeness imports (${max}); it is probably a whole model.`,
    hint: 'Load models in the Model step; drop concept, LoRA or embedding files here.',
  }),
} as const;
