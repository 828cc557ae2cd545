// The tiny pack for tests: built once per process from ../shared/data/reference/tiny-sd
// into a temp folder (weights, tokenizer, untrained tuning encoder, ONNX graphs, manifest).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackSync } from '../src/packs/pack-build-node.ts';
import { loadPackFromFolder } from '../src/packs/pack-node.ts';
import type { LoadedPack } from '../src/packs/pack-loader.ts';

export const TINY_SD = fileURLToPath(new URL('../../shared/data/reference/tiny-sd', import.meta.url));
export const PHOTOS = fileURLToPath(new URL('../../shared/data/photos', import.meta.url));

let dir: string | null = null;

export function tinyPackDir(): string {
  if (!dir) {
    dir = join(mkdtempSync(join(tmpdir(), 'likeness-tiny-')), 'tiny');
    // `likeness pack` in a child process: the builder is asynchronous, this helper is not.
    buildPackSync(['--from', TINY_SD, '--out', dir, '--name', 'tiny', '--quiet']);
  }
  return dir;
}

export function loadTinyPack(): Promise<LoadedPack> {
  return loadPackFromFolder(tinyPackDir());
}
