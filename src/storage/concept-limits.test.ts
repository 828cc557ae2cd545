import { describe, expect, it } from 'vitest';
import { LORA_ALPHA } from '../domain/limits.ts';
import { importConceptBlob } from './concept-file-blob.ts';
import { conceptFieldProblems, placeholderProblem } from './concept-limits.ts';
import { ConceptFileError, exportConcept, importConcept, maxConceptFileBytes } from './concept-safetensors.ts';
import { clipTokenizer, FIXTURE_PACK, fixtureConcept, rewriteConcept } from '../../test/concept-fixtures.ts';
import { StorageError } from './storage-error.ts';

const valid = exportConcept(fixtureConcept(), { createdAt: 0 });
const withMeta = (m: Record<string, string | undefined>) =>
  rewriteConcept(valid, (_, meta) => void Object.assign(meta, m));

function refusal(bytes: Uint8Array): ConceptFileError {
  try {
    importConcept(bytes, FIXTURE_PACK);
  } catch (e) {
    if (e instanceof ConceptFileError) return e;
    throw e;
  }
  throw new Error('import accepted a file it should refuse');
}

describe('concept fields: one rule set for creation, import and generation', () => {
  it('the fixture itself imports (the rules admit real concepts)', () => {
    expect(importConcept(valid, FIXTURE_PACK).alpha).toBe(4);
    expect(conceptFieldProblems(fixtureConcept(), clipTokenizer)).toEqual([]);
  });

  it('alpha has an upper bound (1e6, 1e30, 1e308 imported and made NaN images)', () => {
    for (const alpha of ['1e6', '1e30', '1e308', '1025']) {
      const e = refusal(withMeta({ alpha, lora_adapter_metadata: undefined }));
      expect(e.code, alpha).toBe('metadata');
      expect(e.message).toMatch(/"alpha".*outside \(0, 1024\]/);
    }
    expect(refusal(withMeta({ alpha: '1024', lora_adapter_metadata: undefined })).message).toMatch(/scale/);
    expect(() => exportConcept({ ...fixtureConcept(), alpha: 1e30 })).toThrow(/alpha/);
    expect(LORA_ALPHA.max).toBe(1024);
  });

  it('the nearest token id must be in the pack vocabulary (49408, 1e5, 2^31−1 imported)', () => {
    for (const id of ['49408', '100000', '2147483647']) {
      const e = refusal(withMeta({ nearest_token_id: id }));
      expect(e.code).toBe('metadata');
      expect(e.message).toMatch(/nearest_token_id.*49408-token vocabulary/);
    }
    expect(importConcept(withMeta({ nearest_token_id: '49407' }), FIXTURE_PACK).hardTokenId).toBe(49407);
  });

  it('placeholders follow the creation rules: one made-up word, visible, not a marker', () => {
    const cases: [string, RegExp][] = [
      ['my dog', /space/],
      ['a photo of', /space/],
      ['a', /already knows/],
      ['dog', /already knows/],
      ['<|endoftext|>', /markers/],
      ['<start_of_text>', /markers/],
      ['S\u200b*', /U\+200B/],
      ['S\u202e*', /U\+202E/],
      ['S\u2066*', /U\+2066/],
      ['\ufeffS*', /U\+FEFF/],
      ['S\u00ad*', /U\+00AD/],
      ['S\u{e0041}*', /U\+E0041/],
      ['S\u3000*', /space/],
    ];
    for (const [p, why] of cases) {
      const e = refusal(withMeta({ placeholder: p }));
      expect(e.code, p).toBe('metadata');
      expect(e.message, p).toMatch(why);
      // creation (personalize) uses the same function with the same tokenizer
      expect(placeholderProblem(p, clipTokenizer), p).toMatch(why);
    }
    for (const ok of ['S*', '<likeness>', 'sks-dog', 'zorblaxian', 'S*2']) {
      expect(placeholderProblem(ok, clipTokenizer), ok).toBeNull();
    }
  });

  it('generation refuses a concept with a bad field that never went through a file', () => {
    const c = { ...fixtureConcept(), alpha: 1e30, hardTokenId: 49408, placeholder: 'a' };
    const problems = conceptFieldProblems(c, clipTokenizer);
    expect(problems.join('\n')).toMatch(/alpha/);
    expect(problems.join('\n')).toMatch(/nearest token id 49408/);
    expect(problems.join('\n')).toMatch(/placeholder "a" is a word/);
  });
});

describe('concept import from a File', () => {
  it('checks the size before reading: a 3 GiB model is refused without being read', async () => {
    let read = false;
    const file = {
      name: 'sd15.safetensors',
      size: 3 * 2 ** 30,
      arrayBuffer: () => {
        read = true;
        return Promise.reject(new Error('the whole file was read'));
      },
    };
    const e = await importConceptBlob(file, FIXTURE_PACK, { newId: () => 'x' }).catch((err: unknown) => err);
    expect(read).toBe(false);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as Error).message).toMatch(/sd15\.safetensors.*3221225472 bytes, more than any concept/);
    expect(maxConceptFileBytes(FIXTURE_PACK)).toBeLessThan(2 ** 30);
  });

  it('a file of the right size imports', async () => {
    const file = {
      name: 'c.safetensors',
      size: valid.length,
      arrayBuffer: () => Promise.resolve(valid.slice().buffer),
    };
    const { record } = await importConceptBlob(file, FIXTURE_PACK, { newId: () => 'id1' });
    expect(record.id).toBe('id1');
    expect(record.placeholder).toBe('<likeness>');
  });
});
