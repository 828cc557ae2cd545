// Browser side of pack-io: what the user picked, read by byte range through Blob.slice
// (pack-io.ts's blobSource) — the browser reads just that range from disk, so a 4 GB
// checkpoint is never in memory.
// A picked folder (<input webkitdirectory> or a directory picker) arrives as File objects
// with paths relative to the picked folder's parent ("sd15/unet/config.json").
import { blobFolder, type SourceFolder } from './pack-io.ts';

type FileWithPath = File & { webkitRelativePath?: string };

const relPath = (f: FileWithPath) => (f.webkitRelativePath || f.name).replace(/^\/+/, '');

/** What a picked folder holds: a pack (manifest.json) or a diffusers model (model_index.json / unet/config.json). */
export type PickedFolderKind = 'pack' | 'diffusers' | 'unknown';

/** The shallowest folder inside the picked files that holds `file`, as a prefix ("" or "sd15/"), or null. */
function rootOf(files: readonly File[], file: string): string | null {
  let best: string | null = null;
  for (const f of files) {
    const p = relPath(f);
    if (p !== file && !p.endsWith(`/${file}`)) continue;
    const prefix = p.slice(0, p.length - file.length);
    if (best === null || prefix.split('/').length < best.split('/').length) best = prefix;
  }
  return best;
}

/** Tells a picked pack folder from a picked diffusers folder (the app offers one folder picker). */
export function pickedFolderKind(files: readonly File[]): PickedFolderKind {
  const pack = rootOf(files, 'manifest.json');
  const model = rootOf(files, 'unet/config.json') ?? rootOf(files, 'model_index.json');
  if (pack !== null && (model === null || pack.split('/').length <= model.split('/').length)) return 'pack';
  if (model !== null) return 'diffusers';
  return 'unknown';
}

/** The picked files below the shallowest folder holding `marker`, as a folder; null without one. */
export function pickedFolderOf(files: readonly File[], marker: string): SourceFolder | null {
  const root = rootOf(files, marker);
  if (root === null) return null;
  const byPath = new Map<string, File>();
  for (const f of files) {
    const p = relPath(f);
    if (p.startsWith(root)) byPath.set(p.slice(root.length), f);
  }
  return blobFolder(root.replace(/\/$/, '') || 'picked folder', byPath);
}

/**
 * A diffusers folder from picked files. Its root is the shallowest folder holding
 * unet/config.json (or model_index.json), so picking the model folder itself or its parent
 * both work.
 */
export function pickedDiffusersFolder(files: readonly File[]): SourceFolder {
  const folder = pickedFolderOf(files, 'unet/config.json') ?? pickedFolderOf(files, 'model_index.json');
  if (folder === null) {
    throw new Error(
      `the chosen folder is not a diffusers model: it has no unet/config.json (${files.length} file${files.length === 1 ? '' : 's'} chosen). Choose the model's folder — the one with unet/, vae/, text_encoder/, tokenizer/ and scheduler/ in it.`,
    );
  }
  return folder;
}
