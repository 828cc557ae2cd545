// Importing a concept from a File the user dropped: the size is checked against the loaded
// pack before a single byte is read, so a multi-gigabyte model .safetensors dropped into the
// library is refused without being loaded into memory.
import { importConceptFile, type ImportedConcept } from './concept-file.ts';
import { conceptFileSizeError, type ConceptPackInfo } from './concept-safetensors.ts';
import { storageError } from './storage-error.ts';

/** What importConceptBlob needs of a File (a Node Blob with a name works too). */
export interface ConceptBlob {
  name: string;
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** importConceptFile for a File: refuses an oversized file from its size alone. */
export async function importConceptBlob(
  file: ConceptBlob,
  pack: ConceptPackInfo | null,
  options: { newId: () => string },
): Promise<ImportedConcept> {
  const tooLarge = pack ? conceptFileSizeError(file.size, pack) : null;
  if (tooLarge) throw storageError('bad-file', `“${file.name}” was refused. ${tooLarge.message}`, tooLarge);
  return importConceptFile(new Uint8Array(await file.arrayBuffer()), pack, {
    fileName: file.name,
    newId: options.newId,
  });
}
