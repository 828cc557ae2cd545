// Writing a concept in the format the user picked: the bytes come from the session core
// (session/concept-files.ts, the same the app offers); this file only puts them on disk.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ExportFormat } from '../storage/concept-export.ts';
import type { ConceptData } from '../domain/types.ts';
import { exportConceptFiles } from '../session/concept-files.ts';

/**
 * Writes `concept` to `out`: a .safetensors file for 'likeness' (kohya names with `kohya`);
 * for 'diffusers' / 'a1111' a zip when `out` ends in .zip, else a folder. Returns what was written.
 */
export function writeConceptAs(
  concept: ConceptData,
  format: ExportFormat,
  out: string,
  options: { kohya?: boolean; createdAt?: number } = {},
): string[] {
  const zip = /\.zip$/i.test(out);
  const name = basename(out).replace(/\.(zip|safetensors)$/i, '');
  const files = exportConceptFiles(concept, { format, name, kohya: options.kohya, zip, createdAt: options.createdAt });
  if (format === 'likeness' || zip) {
    writeFileSync(out, files[0].bytes);
    return [out];
  }
  mkdirSync(out, { recursive: true });
  return files.map((f) => {
    const path = join(out, f.name);
    writeFileSync(path, f.bytes);
    return path;
  });
}
