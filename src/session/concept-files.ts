// A concept as the files a person takes elsewhere: the Likeness concept file (.safetensors,
// PEFT or kohya names), a diffusers folder (load_lora_weights + load_textual_inversion) or an
// A1111 / ComfyUI pair, optionally zipped (storage/concept-export.ts). Bytes only: the CLI writes
// them to disk, the app offers them as downloads.
import type { ConceptData } from '../domain/types.ts';
import { bundleZip, exportBundle, type ExportFormat } from '../storage/concept-export.ts';
import { exportConcept } from '../storage/concept-safetensors.ts';
import { BadRequest } from './bad-request.ts';

export const EXPORT_FORMATS = ['likeness', 'diffusers', 'a1111'] as const satisfies readonly ExportFormat[];

export interface ConceptExportOptions {
  format: ExportFormat;
  /** The concept's name: file and folder names are made from it. */
  name: string;
  /** The Likeness file with kohya tensor names (A1111 tools) instead of diffusers/PEFT. */
  kohya?: boolean;
  /** A diffusers / A1111 bundle as one zip instead of separate files. */
  zip?: boolean;
  /** Written into the files (concept created_at, zip dates); default now. */
  createdAt?: number;
}

export interface ExportedFile {
  /** A file name, or a path below a folder named after the concept for unzipped bundles. */
  name: string;
  bytes: Uint8Array;
}

export function exportConceptFiles(concept: ConceptData, o: ConceptExportOptions): ExportedFile[] {
  const createdAt = o.createdAt ?? Date.now();
  if (o.format === 'likeness') {
    return [
      {
        name: `${o.name}.safetensors`,
        bytes: exportConcept(concept, { naming: o.kohya ? 'kohya' : 'peft', createdAt }),
      },
    ];
  }
  if (o.kohya) {
    throw new BadRequest("Kohya names are for the Likeness file's tensors; the a1111 format already uses them.");
  }
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new BadRequest(
      `The export format must be one of ${EXPORT_FORMATS.join(', ')}, not ${JSON.stringify(o.format)}.`,
    );
  }
  const bundle = exportBundle(concept, o.format, { name: o.name });
  if (o.zip) return [{ name: `${bundle.folder}.zip`, bytes: bundleZip(bundle, new Date(createdAt)) }];
  return bundle.files.map((f) => ({ name: f.name, bytes: f.bytes }));
}
