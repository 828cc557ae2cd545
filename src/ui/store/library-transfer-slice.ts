// Concepts in and out of the library: Likeness concept files, other tools' LoRA and
// embedding files (read by the worker), exports for diffusers / A1111, and the blend-1
// preview that shows how other tools will draw a concept.
import { DEFAULTS } from '../../domain/defaults.ts';
import { bundleZip, exportBundle, safeStem } from '../../storage/concept-export.ts';
import {
  conceptData,
  conceptFileName,
  defaultSettings,
  exportConceptFile,
  type ConceptNaming,
  type ImportedConcept,
} from '../../storage/concept-file.ts';
import { importConceptBlob } from '../../storage/concept-file-blob.ts';
import { cleanName, type ConceptRecord } from '../../storage/concept-record.ts';
import { CONCEPT_MAX_FILE_BYTES, ConceptFileError, type ConceptPackInfo } from '../../storage/concept-safetensors.ts';
import { StorageError, storageError } from '../../storage/storage-error.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../../worker/client.ts';
import { BUSY, IMPORT_REFUSALS, NOTICES, PROMPTS, quoted, quotedList, STORAGE_DOING, WORKER_DOING } from '../copy.ts';
import { formatBytes } from '../format.ts';
import { saveFile } from '../image-encode.ts';
import { workerNotice } from '../messages.ts';
import type { GetState, Slice } from './app-state.ts';
import { generateSettings } from './generate-slice.ts';
import { needLibrary, storageFailure } from './library-access.ts';
import type { OtherToolFormat } from './library-slice.ts';
import { patcher } from './patch.ts';

export interface LibraryTransferSlice {
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
}

/** What an imported concept file is checked against: the loaded pack, or null before one is loaded. */
function conceptPackInfo(get: GetState): ConceptPackInfo | null {
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
}

export const createLibraryTransferSlice: Slice<LibraryTransferSlice> = (set, get) => {
  const patch = patcher(set);

  /** Other tools' files (a LoRA and/or an embedding dropped together) as one new concept. */
  const importForeign = async (files: File[]): Promise<void> => {
    const names = quotedList(files.map((f) => f.name));
    // The worker checks the files against the loaded pack; without one there is nothing to ask.
    if (get().pack.status !== 'done') {
      get().notify(NOTICES.foreignNeedsPack(names));
      return;
    }
    // Sizes before reads: a whole model dropped here is refused without being loaded.
    const huge = files.find((f) => f.size > CONCEPT_MAX_FILE_BYTES);
    if (huge) {
      get().notify(NOTICES.foreignTooLarge(huge.name, formatBytes(huge.size), formatBytes(CONCEPT_MAX_FILE_BYTES)));
      return;
    }
    patch('library', { busy: BUSY.importing(names) });
    try {
      const word = get().library.importWord.trim();
      const concept = await workerApi().importForeign(newJobId('import'), {
        files: await Promise.all(
          files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })),
        ),
        ...(word ? { placeholder: word } : {}),
        ...(get().library.importPartial ? { dropTextEncoder: true, dropOtherLayers: true } : {}),
      });
      const now = Date.now();
      const record: ConceptRecord = {
        ...concept,
        id: crypto.randomUUID(),
        name:
          cleanName(safeStem(files[0].name.replace(/\.safetensors$/i, ''), concept.placeholder)) ?? concept.placeholder,
        thumbnail: new Uint8Array(0),
        createdAt: now,
        updatedAt: now,
        settings: defaultSettings(concept),
      };
      const concepts = await (await needLibrary(get)).save(record);
      patch('library', { concepts, busy: null });
    } catch (err) {
      patch('library', { busy: null });
      if (err instanceof StorageError) {
        storageFailure(get, err, STORAGE_DOING.import(names));
        return;
      }
      get().notify({
        ...workerNotice('library', WORKER_DOING.importForeign(names), toWorkerError(err)),
        title: IMPORT_REFUSALS.foreignTitle(names),
      });
    }
  };

  return {
    async exportConcept(id, naming) {
      try {
        const record = await (await needLibrary(get)).get(id);
        saveFile(exportConceptFile(record, naming), conceptFileName(record, naming), 'application/octet-stream');
      } catch (err) {
        storageFailure(get, err, STORAGE_DOING.export);
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
        const record = await (await needLibrary(get)).get(id);
        const bundle = exportBundle(record, get().library.exportFormat, { name: record.name });
        saveFile(bundleZip(bundle, new Date()), `${bundle.folder}.zip`, 'application/zip');
      } catch (err) {
        if (err instanceof ConceptFileError) {
          get().notify(NOTICES.exportRefused(err.message));
          return;
        }
        storageFailure(get, err, STORAGE_DOING.export);
      }
    },
    async previewBlendOne(id) {
      const s = get();
      if (s.pack.status !== 'done' || s.library.blendOne?.status === 'running') return;
      patch('library', { blendOne: { id, status: 'running', image: null } });
      try {
        const record = await (await needLibrary(get)).get(id);
        const { steps, guidance, sampler } = generateSettings(s.pack.summary);
        const [image] = await workerApi().generate(
          newJobId('blend-one'),
          {
            prompt: PROMPTS.concept(record.placeholder),
            negativePrompt: DEFAULTS.generate.negativePrompt,
            steps,
            guidance,
            sampler,
            // The whole LoRA, as other tools apply it: what this preview is for.
            blend: 1,
            batch: 1,
            seed: DEFAULTS.generate.seed,
            runtime: s.generate.runtime,
            concept: conceptData(record),
          },
          progressCallback(() => {}),
        );
        if (get().library.blendOne?.id === id) patch('library', { blendOne: { id, status: 'done', image } });
      } catch (err) {
        if (get().library.blendOne?.id === id) patch('library', { blendOne: { id, status: 'failed', image: null } });
        get().notify(workerNotice('library', WORKER_DOING.blendOne, toWorkerError(err)));
      }
    },
    async importConcepts(files) {
      const foreign: File[] = [];
      for (const file of files) {
        try {
          if (!/\.safetensors$/i.test(file.name)) {
            const refusal = IMPORT_REFUSALS.notConceptFile(file.name);
            throw new StorageError('bad-file', refusal.message, refusal.hint);
          }
          let imported: ImportedConcept;
          try {
            // The size is checked before the file is read: a dropped multi-GB model is not loaded.
            imported = await importConceptBlob(file, conceptPackInfo(get), { newId: () => crypto.randomUUID() });
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
          if (problems.length) throw storageError('bad-file', IMPORT_REFUSALS.problems(file.name, problems));
          patch('library', { busy: BUSY.importing(quoted(record.name)) });
          const concepts = await (await needLibrary(get)).save(record);
          patch('library', { concepts, busy: null });
          for (const w of warnings) get().notify(NOTICES.importedPartly(w));
        } catch (err) {
          patch('library', { busy: null });
          storageFailure(get, err, STORAGE_DOING.import(quoted(file.name)));
        }
      }
      if (foreign.length > 0) await importForeign(foreign);
      void get().refreshEstimate();
    },
  };
};
