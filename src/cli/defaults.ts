// Where the CLI finds the bundled tiny pack, and how it builds it when missing.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildPackSync } from '../packs/pack-build-node.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The product's models/ folder: packs live in models/<name>/ (served by the dev server and the build). */
export const MODELS_DIR = fileURLToPath(new URL('../../models', import.meta.url));
export const TINY_PACK_DIR = fileURLToPath(new URL('../../models/tiny', import.meta.url));
export const TINY_SD_SOURCE = fileURLToPath(new URL('../../../shared/data/reference/tiny-sd', import.meta.url));

/** The tiny pack's folder, building it from ../shared/data/reference/tiny-sd if needed. */
export function ensureTinyPack(log: (s: string) => void): string {
  if (existsSync(`${TINY_PACK_DIR}/manifest.json`)) return TINY_PACK_DIR;
  if (!existsSync(TINY_SD_SOURCE)) {
    throw new Error(
      `the tiny pack is not built and its source ${TINY_SD_SOURCE} is missing; run \`npm run pack:tiny\` where ../shared exists, or pass --pack`,
    );
  }
  log(`building the tiny pack into ${TINY_PACK_DIR} …`);
  // The untrained encoder, on purpose: it lets the README's first line and the tests run the
  // paper's encoder path end to end on a toy model that has no trained encoder.
  // In a child process: the builder is asynchronous, this function's callers are not.
  buildPackSync(['--from', TINY_SD_SOURCE, '--out', TINY_PACK_DIR, '--name', 'tiny', '--quiet', '--untrained-encoder']);
  return TINY_PACK_DIR;
}
