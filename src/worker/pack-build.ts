// The Model step's "build from a model on this device": a picked diffusers folder or a
// single .safetensors checkpoint becomes a pack inside the worker. The streaming builder
// (packs/build-pack.ts) reads the picked files by byte range (Blob.slice: never a whole
// weights file in memory) and writes through a CachePackSink straight into the pack cache
// (OPFS), where the loader then finds every file — the pack is written once and loads like
// a downloaded one. Cancel aborts the build and removes what it wrote.
import type { BuildPackOptions } from '../packs/build-pack.ts';
import type { Manifest } from '../packs/manifest.ts';
import type { PackCache } from '../packs/pack-cache.ts';
import { pickedDiffusersFolder, pickedFolderOf } from '../packs/pack-io-browser.ts';
import { blobSource, type BuildProgress, type SourceFolder } from '../packs/pack-io.ts';
import type { LoadedPack } from '../packs/pack-loader.ts';
import { CachePackSink } from '../packs/pack-sink-cache.ts';
import type { DownloadProgress, ModelSource } from '../domain/types.ts';
import { toDownloadProgress } from './pack-source.ts';
import { PackError } from '../domain/errors.ts';
import { MissingImageEncoderError } from '../packs/missing-image-encoder-error.ts';

/** What the worker hands the builder: the part of build-pack.ts's options a picked model fills. */
export type WorkerBuildOptions = Pick<
  BuildPackOptions,
  'source' | 'sink' | 'name' | 'onProgress' | 'signal' | 'imageEncoder' | 'bundledTokenizer' | 'log'
>;

// The CLIP BPE merges the app ships (Vite emits the file as an asset): single-file
// checkpoints carry no tokenizer, and every SD 1.x / 2.x text encoder reads this one.
const BUNDLED_MERGES_URL = new URL('../packs/clip-bpe/bpe_simple_vocab_16e6.txt.gz', import.meta.url);

async function fetchBundledMerges(): Promise<Blob> {
  const r = await fetch(BUNDLED_MERGES_URL);
  if (!r.ok)
    throw new Error(
      `the bundled CLIP tokenizer (${BUNDLED_MERGES_URL.pathname}) could not be loaded: HTTP ${r.status}`,
    );
  return r.blob();
}

/** `folder`'s subfolder `sub` as a folder of its own. */
function subFolder(folder: SourceFolder, sub: string): SourceFolder {
  return { name: `${folder.name}/${sub}`, open: (path) => folder.open(`${sub}/${path}`) };
}

/**
 * The CLIP image encoder for the pack: the picked image-encoder folder, else the
 * image_encoder/ of a single file's config folder; undefined lets the builder look in the
 * diffusers folder itself.
 */
async function imageEncoderFor(
  model: ModelSource,
  source: WorkerBuildOptions['source'],
): Promise<SourceFolder | undefined> {
  if (model.imageEncoderFiles?.length) {
    const folder = pickedFolderOf(model.imageEncoderFiles, 'config.json');
    if (!folder)
      throw new Error(
        'the chosen image-encoder folder has no config.json: choose the folder of a CLIPVisionModelWithProjection (config.json + model.safetensors).',
      );
    return folder;
  }
  if (source.kind === 'single-file' && source.config && (await source.config.open('image_encoder/config.json'))) {
    return subFolder(source.config, 'image_encoder');
  }
  return undefined;
}

/** The builder refused the picked model (reported as a pack problem, with the builder's reason). */
export class PackBuildError extends PackError {
  override name = 'PackBuildError';
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
    file: blobSource(model.file.name, model.file),
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
    /** The bundled CLIP merges (default: fetched from the app's assets); tests read the file. */
    bundledMerges?: () => Promise<Blob>;
  },
): Promise<LoadedPack> {
  const sink = new CachePackSink(o.cache, o.buildId);
  try {
    const source = modelSourceFor(model);
    const imageEncoder = await imageEncoderFor(model, source);
    // For a model with no tokenizer/ of its own (a single file, with no config folder or
    // one of configs only): fetched only when the builder asks for it.
    const bundledTokenizer = async () =>
      blobSource('bpe_simple_vocab_16e6.txt.gz', await (o.bundledMerges ?? fetchBundledMerges)());
    await o.builder({
      source,
      ...(imageEncoder ? { imageEncoder } : {}),
      bundledTokenizer,
      // The builder's notes and warnings (e.g. tensors left out) go to the worker's console;
      // warnings are also kept in the pack's manifest description.
      log: (line) => (/^\s*warning:/.test(line) ? console.warn(line.trim()) : console.info(line.trim())),
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
    if (o.signal.aborted || !(e instanceof Error)) throw e;
    if (e instanceof MissingImageEncoderError) {
      // The builder words it for the CLI (--image-encoder); say what to pick here.
      throw new PackBuildError(
        'This model has no image encoder (image_encoder/), which a pack needs. Also choose an image-encoder folder (a CLIPVisionModelWithProjection: config.json + model.safetensors, e.g. the image_encoder/ of an IP-Adapter or SD-unCLIP model).',
        { cause: e },
      );
    }
    // Errors with a kind keep it, and a TypeError or the like is a bug (internal). The
    // builder's plain Errors are its refusals of the model: a pack problem the user can act on.
    if (Object.getPrototypeOf(e) !== Error.prototype) throw e;
    throw new PackBuildError(e.message, { cause: e });
  }
  return sink.load({ signal: o.signal, onProgress: (p) => o.onProgress(toDownloadProgress(p)) });
}
