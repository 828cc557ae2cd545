// The tiny pack for tests: built once per process from ../shared/data/reference/tiny-sd
// into a temp folder (weights, tokenizer, untrained tuning encoder, ONNX graphs, manifest).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportPackGraphs } from '../src/onnx/export-graphs.ts';
import { buildPack } from '../src/packs/build-pack.ts';
import { loadPackFromFolder } from '../src/packs/pack-node.ts';
import type { LoadedPack } from '../src/packs/pack-loader.ts';

export const TINY_SD = fileURLToPath(new URL('../../shared/data/reference/tiny-sd', import.meta.url));
export const PHOTOS = fileURLToPath(new URL('../../shared/data/photos', import.meta.url));

let dir: string | null = null;

export function tinyPackDir(): string {
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'likeness-tiny-'));
    buildPack({ from: TINY_SD, out: dir, name: 'tiny', exportGraphs: exportPackGraphs });
  }
  return dir;
}

export function loadTinyPack(): Promise<LoadedPack> {
  return loadPackFromFolder(tinyPackDir());
}
