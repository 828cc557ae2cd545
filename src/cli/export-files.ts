// Writing a concept in the format the user picked: the Likeness concept file, or a folder /
// zip for diffusers or A1111 / ComfyUI (storage/concept-export.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bundleZip, exportBundle, type ExportFormat } from '../storage/concept-export.ts';
import { exportConcept } from '../storage/concept-safetensors.ts';
import type { ConceptData } from '../domain/types.ts';
import { UsageError } from './args.ts';

export function parseExportFormat(v: unknown): ExportFormat {
  const f = typeof v === 'string' ? v : 'likeness';
  if (f !== 'likeness' && f !== 'diffusers' && f !== 'a1111')
    throw new UsageError(`--format must be likeness, diffusers or a1111, got ${f}`);
  return f;
}

/**
 * Writes `concept` to `out`: a .safetensors file for 'likeness' (kohya names with `kohya`);
 * for 'diffusers' / 'a1111' a zip when `out` ends in .zip, else a folder. Returns what was written.
 */
export function writeConceptAs(concept: ConceptData, format: ExportFormat, out: string, kohya = false): string[] {
  if (format === 'likeness') {
    writeFileSync(out, exportConcept(concept, { naming: kohya ? 'kohya' : 'peft' }));
    return [out];
  }
  const name = basename(out).replace(/\.zip$/i, '');
  const bundle = exportBundle(concept, format, { name });
  if (/\.zip$/i.test(out)) {
    writeFileSync(out, bundleZip(bundle, new Date()));
    return [out];
  }
  mkdirSync(out, { recursive: true });
  return bundle.files.map((f) => {
    const path = join(out, f.name);
    writeFileSync(path, f.bytes);
    return path;
  });
}
