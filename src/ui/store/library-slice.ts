// The Library step: the saved concepts (IndexedDB), storage use, saving, renaming,
// deleting, and choosing a concept to generate with. Import and export are in
// library-transfer-slice.ts.
import type { ConceptData, ImageResult } from '../../domain/types.ts';
import {
  cleanName,
  type ConceptRecord,
  type ConceptSettings,
  type ConceptSummary,
} from '../../storage/concept-record.ts';
import { ConceptLibrary, type StorageEstimate, type WriteHooks } from '../../storage/library-db.ts';
import { BUSY, newConceptName, NOTICES, PROMPTS, STORAGE_DOING } from '../copy.ts';
import { cropThumbnail } from '../image-encode.ts';
import type { Slice } from './app-state.ts';
import { selectConcept } from './generate-slice.ts';
import { connection, needLibrary, storageFailure } from './library-access.ts';
import { patcher } from './patch.ts';

export type OtherToolFormat = 'diffusers' | 'a1111';

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

export interface LibrarySlice {
  library: LibraryState;
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
  /** Generates with the concept: selects it (and its blend) and goes to the Generate step. */
  useConcept(id: string): void;
}

export const createLibrarySlice: Slice<LibrarySlice> = (set, get) => {
  const patch = patcher(set);
  return {
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
    async initLibrary() {
      connection.opening ??= (async () => {
        try {
          const { library: lib, report } = await ConceptLibrary.open();
          connection.library = lib;
          const concepts = await lib.list();
          patch('library', { status: 'ready', concepts });
          if (report.repaired) get().notify(NOTICES.libraryRepaired(report.repaired));
          void get().refreshEstimate();
          return lib;
        } catch (err) {
          connection.opening = null;
          patch('library', { status: 'unavailable' });
          throw storageFailure(get, err, STORAGE_DOING.open);
        }
      })();
      await connection.opening.catch(() => {});
    },
    async refreshEstimate() {
      try {
        const estimate = await ConceptLibrary.estimate();
        patch('library', { estimate, persisted: estimate?.persisted ?? null });
      } catch (err) {
        // The estimate is informative only, but a failure still says so.
        storageFailure(get, err, STORAGE_DOING.estimate);
      }
    },
    async saveConcept(concept, options = {}, hooks) {
      const lib = await needLibrary(get);
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
      const record: ConceptRecord = {
        ...concept,
        id: crypto.randomUUID(),
        name: options.name ?? newConceptName(concept.nearestWords[0], concept.placeholder),
        thumbnail,
        createdAt: now,
        updatedAt: now,
        settings,
      };
      patch('library', { busy: BUSY.saving(record.name) });
      try {
        const concepts = await lib.save(record, hooks);
        patch('library', { concepts, busy: null });
      } catch (err) {
        patch('library', { busy: null });
        throw storageFailure(get, err, STORAGE_DOING.save(record.name));
      }
      void lib.requestPersistence().then(
        (persisted) => patch('library', { persisted }),
        (err: unknown) => storageFailure(get, err, STORAGE_DOING.persist),
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
      // The library's own rule for names (storage/concept-record.ts), checked here too so the
      // rename box stays open with the reason.
      if (!cleanName(r.draft)) {
        get().notify(NOTICES.emptyName());
        return;
      }
      try {
        const concepts = await (await needLibrary(get)).rename(r.id, r.draft);
        patch('library', { concepts, renaming: null });
      } catch (err) {
        storageFailure(get, err, STORAGE_DOING.rename);
      }
    },
    askDelete(id) {
      patch('library', { confirmingDelete: id, renaming: null });
    },
    async deleteConcept(id) {
      try {
        const concepts = await (await needLibrary(get)).delete(id);
        patch('library', { concepts, confirmingDelete: null });
        if (get().generate.conceptId === id) patch('generate', { conceptId: null });
        void get().refreshEstimate();
      } catch (err) {
        storageFailure(get, err, STORAGE_DOING.delete);
      }
    },
    useConcept(id) {
      const c = get().library.concepts.find((x) => x.id === id);
      if (!c) return;
      const g = get().generate;
      const prompt = g.prompt.includes(c.placeholder) ? g.prompt : PROMPTS.concept(c.placeholder);
      selectConcept(set, get, id);
      patch('generate', { prompt });
      set({ step: 'generate' });
    },
  };
};
