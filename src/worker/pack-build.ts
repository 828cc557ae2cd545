// The Model step's "build from a model on this device": a picked diffusers folder or a
// single .safetensors checkpoint becomes a pack inside the worker. The streaming builder
// (packs/build-pack.ts) reads the picked files by byte range (Blob.slice: never a whole
// weights file in memory) and writes through a CachePackSink straight into the pack cache
// (OPFS), where the loader then finds every file — the pack is written once and loads like
// a downloaded one. Cancel aborts the build and removes what it wrote.
import type { Manifest } from '../packs/manifest.ts';
import type { PackCache } from '../packs/pack-cache.ts';
import { blobSource, pickedDiffusersFolder } from '../packs/pack-io-browser.ts';
import type { BuildProgress, PackSink, RangedSource, SourceFolder } from '../packs/pack-io.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { CachePackSink } from '../packs/pack-sink-cache.ts';
import type { DownloadProgress, ModelSource } from './api.ts';
import { toDownloadProgress } from './pack-source.ts';

/** What the worker hands the builder (the subset of build-pack.ts's options it uses). */
export interface WorkerBuildOptions {
  source:
    { kind: 'diffusers'; folder: SourceFolder } | { kind: 'single-file'; file: RangedSource; config?: SourceFolder };
  sink: PackSink;
  name: string;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
}

/** Builds a pack into the sink, committing it when complete and discarding it on failure. */
export type PackBuilder = (o: WorkerBuildOptions) => Promise<Manifest>;

/** A pack name from what was picked: the folder's or the file's name. */
export function modelName(model: ModelSource): string {
  const raw =
    model.kind === 'single-file'
      ? model.file.name.replace(/\.safetensors$/i, '')
      : ((model.files[0] as File & { webkitRelativePath?: string })?.webkitRelativePath?.split('/')[0] ?? 'model');
  return raw.replace(/[^A-Za-z0-9 ._-]/g, '-').slice(0, 80) || 'model';
}

/** The builder's input for what the user picked; refuses what cannot be a model, with the reason. */
export function modelSourceFor(model: ModelSource): WorkerBuildOptions['source'] {
  if (model.kind === 'diffusers') return { kind: 'diffusers', folder: pickedDiffusersFolder(model.files) };
  if (!/\.safetensors$/i.test(model.file.name)) {
    throw new Error(
      /\.(ckpt|pt|pth|bin)$/i.test(model.file.name)
        ? `${model.file.name} is a PyTorch pickle, which can run code when loaded, so Likeness never reads one. Convert it to .safetensors first (see docs/packs.md), then choose that file.`
        : `${model.file.name} is not a .safetensors checkpoint. Choose a Stable Diffusion 1.x or 2.x .safetensors file, or a diffusers folder.`,
    );
  }
  return {
    kind: 'single-file',
    file: blobSource(model.file, model.file.name),
    ...(model.configFiles?.length ? { config: pickedDiffusersFolder(model.configFiles) } : {}),
  };
}

export function buildProgress(p: BuildProgress): DownloadProgress {
  return {
    phase: 'build',
    file: p.stage,
    loadedBytes: p.bytesDone,
    totalBytes: p.bytesTotal,
    bytesPerSecond: p.rate,
    etaSeconds: p.etaSeconds,
  };
}

/** Builds the picked model into `cache` and loads the result through the verifying loader. */
export async function buildAndLoad(
  model: ModelSource,
  o: {
    name?: string;
    cache: PackCache;
    builder: PackBuilder;
    signal: AbortSignal;
    onProgress: (p: DownloadProgress) => void;
    buildId?: string;
  },
): Promise<LoadedPack> {
  const source = modelSourceFor(model);
  const sink = new CachePackSink(o.cache, o.buildId);
  try {
    await o.builder({
      source,
      sink,
      name: o.name?.trim() || modelName(model),
      signal: o.signal,
      onProgress: (p) => o.onProgress(buildProgress(p)),
    });
    o.signal.throwIfAborted();
  } catch (e) {
    // The builder discards on failure; a second discard is a no-op, and covers builders
    // that stop before reaching their own clean-up.
    await sink.discard();
    throw e;
  }
  return sink.load({ signal: o.signal, onProgress: (p) => o.onProgress(toDownloadProgress(p)) });
}
