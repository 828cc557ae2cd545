// The concept files both shells hand out: the Likeness file reads back as the same concept,
// bundles are the files storage/concept-export.ts makes (zipped or not), and the date is the
// only input besides the concept (the same call gives the same bytes).
import { describe, expect, it } from 'vitest';
import { DIFFUSERS_EMBEDDING_FILE, DIFFUSERS_LORA_FILE } from '../storage/concept-export.ts';
import { importConcept } from '../storage/concept-safetensors.ts';
import { FIXTURE_PACK, fixtureConcept } from '../../test/concept-fixtures.ts';
import { exportConceptFiles } from './concept-files.ts';

const concept = fixtureConcept();
const createdAt = Date.UTC(2026, 0, 1);

describe('exportConceptFiles', () => {
  it('the Likeness file reads back as the concept, the same bytes each time', () => {
    const [file] = exportConceptFiles(concept, { format: 'likeness', name: 'mug', createdAt });
    expect(file.name).toBe('mug.safetensors');
    const back = importConcept(file.bytes, FIXTURE_PACK);
    expect(back.embedding).toEqual(concept.embedding);
    expect(back.lora.map((l) => l.B)).toEqual(concept.lora.map((l) => l.B));
    expect(exportConceptFiles(concept, { format: 'likeness', name: 'mug', createdAt })[0].bytes).toEqual(file.bytes);
    const kohya = exportConceptFiles(concept, { format: 'likeness', name: 'mug', kohya: true, createdAt })[0];
    expect(kohya.bytes).not.toEqual(file.bytes);
    expect(importConcept(kohya.bytes, FIXTURE_PACK).embedding).toEqual(concept.embedding);
  });
  it('a diffusers bundle as files or as one zip', () => {
    const files = exportConceptFiles(concept, { format: 'diffusers', name: 'mug', createdAt });
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining([DIFFUSERS_LORA_FILE, DIFFUSERS_EMBEDDING_FILE]));
    const [zip] = exportConceptFiles(concept, { format: 'diffusers', name: 'mug', zip: true, createdAt });
    expect(zip.name).toMatch(/\.zip$/);
    expect([...zip.bytes.subarray(0, 4)]).toEqual([0x50, 0x4b, 0x03, 0x04]);
    expect(exportConceptFiles(concept, { format: 'diffusers', name: 'mug', zip: true, createdAt })[0].bytes).toEqual(
      zip.bytes,
    );
  });
  it('refuses kohya names for a bundle and unknown formats', () => {
    expect(() => exportConceptFiles(concept, { format: 'a1111', name: 'mug', kohya: true })).toThrow(
      /a1111 format already uses them/,
    );
    expect(() => exportConceptFiles(concept, { format: 'onnx' as never, name: 'mug' })).toThrow(
      /one of likeness, diffusers, a1111/,
    );
  });
});
