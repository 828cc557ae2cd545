// Structured mutations of a concept file's fields (not byte flips: those are in
// concept-safetensors.test.ts): each field the campaign of issue 12 got through — alpha,
// rank, blend, nearest_token_id, placeholder — set to generated hostile values, alone and
// together. Every input is either refused with a ConceptFileError or imports as a concept
// that passes the shared field rules, within a time and memory bound.
import { describe, expect, it } from 'vitest';
import { bounded } from '../../test/bounded.ts';
import { rng, type Rng } from '../../test/random.ts';
import { conceptFieldProblems } from './concept-limits.ts';
import { ConceptFileError, exportConcept, importConcept } from './concept-safetensors.ts';
import { clipTokenizer, FIXTURE_PACK, fixtureConcept, rewriteConcept } from '../../test/concept-fixtures.ts';

const pick = <T>(g: Rng, xs: readonly T[]): T => xs[g.int(0, xs.length - 1)];

const NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '1e-300',
  '1e6',
  '1e30',
  '1e308',
  '1e309',
  '4',
  '64',
  '1024',
  '1025',
  '2147483647',
  '2147483648',
  '9007199254740993',
  '49407',
  '49408',
  '100000',
  '1.0',
  'NaN',
  'Infinity',
  '0x10',
  ' 4',
  '',
];
const WORDS = [
  'S*',
  'a',
  'the',
  'dog',
  'my dog',
  'a photo of',
  '<|endoftext|>',
  '<start_of_text>',
  'S\u200b*',
  'S\u202e*',
  '\u2066S*',
  'S\u00ad',
  '\ufeff',
  'S*\n',
  'x'.repeat(65),
  '\u{e0001}S',
  'Ｓ*',
  '<likeness>',
  '!',
  '*',
  ' S*',
  'S*\u3000',
];

/** One generated mutation: 1–3 fields set to hostile values. */
function mutate(g: Rng): Record<string, string> {
  const fields: Record<string, () => string> = {
    alpha: () => (g.uniform() < 0.7 ? pick(g, NUMBERS) : String(10 ** g.int(-5, 310) * g.uniform())),
    rank: () => pick(g, NUMBERS),
    blend: () => (g.uniform() < 0.7 ? pick(g, NUMBERS) : String(g.uniform() * 3 - 1)),
    nearest_token_id: () => (g.uniform() < 0.7 ? pick(g, NUMBERS) : String(g.int(0, 2 ** 31))),
    placeholder: () =>
      g.uniform() < 0.8
        ? pick(g, WORDS)
        : String.fromCodePoint(...Array.from({ length: g.int(1, 6) }, () => g.int(0, 0x2fff))),
  };
  const out: Record<string, string> = {};
  const keys = Object.keys(fields);
  for (let i = g.int(1, 3); i > 0; i--) {
    const k = pick(g, keys);
    out[k] = fields[k]();
  }
  return out;
}

describe('concept file: structured field mutations', () => {
  it('300 generated field values: refused, or imported as a concept the field rules accept', async () => {
    const g = rng(1212);
    const valid = exportConcept(fixtureConcept(), { createdAt: 0 });
    let accepted = 0;
    const codes = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const m = mutate(g);
      const bytes = rewriteConcept(valid, (_, meta) => {
        Object.assign(meta, m);
        if ('alpha' in m || 'rank' in m) meta.lora_adapter_metadata = undefined;
      });
      const label = `mutation ${i} ${JSON.stringify(m)}`;
      const r = await bounded(label, () => importConcept(bytes, FIXTURE_PACK), { ms: 1500, mib: 64 });
      if (r.ok) {
        accepted++;
        expect(conceptFieldProblems(r.value, clipTokenizer), label).toEqual([]);
      } else {
        if (!(r.error instanceof ConceptFileError)) throw r.error;
        expect(r.error.message.length, label).toBeLessThan(1000);
        codes.add(r.error.code);
      }
    }
    expect(accepted).toBeGreaterThan(5);
    expect(codes.has('metadata')).toBe(true);
  });
});
