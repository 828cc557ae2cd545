// The Model step: where the pack comes from (bundled, an address, a picked folder, a
// checkpoint to build), loading it in the worker, and the summary the other steps use.
import type { DownloadProgress, PackSource, PackSummary } from '../../domain/types.ts';
import { pickedFolderKind, type PickedFolderKind } from '../../packs/pack-io-browser.ts';
import { newJobId, progressCallback, toWorkerError, workerApi } from '../../worker/client.ts';
import { NOTICES, WORKER_DOING } from '../copy.ts';
import { workerNotice } from '../messages.ts';
import type { JobStatus, Slice } from './app-state.ts';
import { cancelWorkerJob, patcher } from './patch.ts';

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

export interface PackSlice {
  pack: PackState;
  setPackSource(kind: PackState['sourceKind']): void;
  setPackUrl(url: string): void;
  setPackFolder(files: File[]): void;
  setPackCheckpoint(file: File | null): void;
  setPackCheckpointConfig(files: File[]): void;
  setPackImageEncoder(files: File[]): void;
  loadPack(): Promise<void>;
  cancelPack(): void;
}

/** A folder the user picked, described for the Model step. */
function pickedFolder(files: File[]): PickedFolder | null {
  if (!files.length) return null;
  const first = files[0] as File & { webkitRelativePath?: string };
  const name = first.webkitRelativePath?.split('/')[0] || first.name || 'folder';
  return { name, files, bytes: files.reduce((n, f) => n + f.size, 0), kind: pickedFolderKind(files) };
}

export const createPackSlice: Slice<PackSlice> = (set, get) => {
  const patch = patcher(set);

  /**
   * The source to load, or null after saying what is missing. Only what the form can tell
   * at once is checked here (nothing entered, a folder that is neither a pack nor a model);
   * the worker checks the address and the files themselves and its answer is shown.
   */
  const packSource = (pack: PackState): PackSource | null => {
    switch (pack.sourceKind) {
      case 'url': {
        const url = pack.url.trim();
        if (!url) {
          get().notify(NOTICES.noPackUrl());
          return null;
        }
        return { kind: 'url', url };
      }
      case 'files': {
        if (!pack.folder) {
          get().notify(NOTICES.noPackFolder());
          return null;
        }
        if (pack.folder.kind === 'unknown') {
          get().notify(NOTICES.notPackOrModel(pack.folder.name));
          return null;
        }
        if (pack.folder.kind === 'pack') return { kind: 'files', files: pack.folder.files };
        return {
          kind: 'build',
          model: {
            kind: 'diffusers',
            files: pack.folder.files,
            ...(pack.imageEncoder ? { imageEncoderFiles: pack.imageEncoder.files } : {}),
          },
        };
      }
      case 'checkpoint':
        if (!pack.checkpoint) {
          get().notify(NOTICES.noCheckpoint());
          return null;
        }
        return {
          kind: 'build',
          model: {
            kind: 'single-file',
            file: pack.checkpoint,
            ...(pack.checkpointConfig ? { configFiles: pack.checkpointConfig.files } : {}),
            ...(pack.imageEncoder ? { imageEncoderFiles: pack.imageEncoder.files } : {}),
          },
        };
      case 'bundled':
        return { kind: 'bundled' };
    }
  };

  return {
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
      const source = packSource(pack);
      if (!source) return;
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
        // The pack's own defaults and placeholder replace the table's (or the last pack's).
        const g = get().generate;
        patch('generate', {
          ...summary.defaults,
          prompt: g.prompt.replaceAll(get().personalize.placeholder, summary.placeholderDefault),
        });
        patch('personalize', { placeholder: summary.placeholderDefault, steps: summary.tuningSteps });
        if (summary.storageNote) get().notify(NOTICES.packInMemory(summary.storageNote));
        if (summary.offline) get().notify(NOTICES.packOffline(summary.name));
      } catch (err) {
        if (get().pack.jobId !== jobId) return;
        const e = toWorkerError(err);
        patch('pack', { status: e.kind === 'cancelled' ? 'cancelled' : 'failed', jobId: null });
        if (e.kind !== 'cancelled') get().notify(workerNotice('pack', WORKER_DOING.loadPack, e));
      }
    },
    cancelPack() {
      const { jobId } = get().pack;
      if (!jobId) return;
      cancelWorkerJob(jobId);
      patch('pack', { status: 'cancelled', jobId: null });
    },
  };
};
