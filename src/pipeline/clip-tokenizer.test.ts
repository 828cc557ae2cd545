import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer, END_OF_TEXT, START_OF_TEXT } from './clip-tokenizer.ts';

const CLIP = new URL('../../../shared/data/clip/', import.meta.url);
const tokenizer = new ClipTokenizer(
  gunzipSync(readFileSync(new URL('bpe_simple_vocab_16e6.txt.gz', CLIP))).toString('utf8'),
);
const { cases } = JSON.parse(readFileSync(new URL('tokenizer-cases.json', CLIP), 'utf8')) as {
  cases: { text: string; ids_untruncated: number[] }[];
};

describe('CLIP tokenizer', () => {
  it('has the 49408-token vocabulary', () => {
    expect(tokenizer.vocabSize).toBe(49408);
  });

  it.each(cases.map((c) => [c.text, c.ids_untruncated] as const))('matches open_clip for %j', (text, ids) => {
    expect([START_OF_TEXT, ...tokenizer.encode(text), END_OF_TEXT]).toEqual(ids);
  });

  it('decodes token ids back to words', () => {
    expect(tokenizer.decodeToken(2368)).toBe('cat');
    expect(tokenizer.decodeToken(1125)).toBe('photo');
    expect(tokenizer.decodeToken(START_OF_TEXT)).toBe('<start_of_text>');
  });

  it('truncates to 77 keeping end-of-text last, and pads with end-of-text', () => {
    const long = tokenizer.tokenize('a '.repeat(200));
    expect(long.length).toBe(77);
    expect(long[0]).toBe(START_OF_TEXT);
    expect(long[76]).toBe(END_OF_TEXT);
    expect(long[75]).toBe(320);
    const short = tokenizer.tokenize('a photo of a cat');
    expect([...short.slice(0, 8)]).toEqual([START_OF_TEXT, 320, 1125, 539, 320, 2368, END_OF_TEXT, END_OF_TEXT]);
    expect(short.every((id, i) => i < 6 || id === END_OF_TEXT)).toBe(true);
  });

  // transformers' CLIPTokenizer resolves special tokens such as pad_token by looking the
  // string up in vocab.json (convert_tokens_to_ids); the reference vocab.json was written
  // by transformers from the same merges.
  it('looks tokens up as vocabulary entries exactly as vocab.json does', () => {
    const vocab = JSON.parse(
      readFileSync(new URL('../../../shared/data/reference/tiny-sd/tokenizer/vocab.json', import.meta.url), 'utf8'),
    ) as Record<string, number>;
    const entries = Object.entries(vocab);
    expect(entries.length).toBe(49408);
    const wrong = entries.filter(([token, id]) => tokenizer.tokenId(token) !== id);
    expect(wrong).toEqual([]);
    // SD 2.x's pad token "!" is the first entry (0), not the word "!" (the end-of-word token 256).
    expect(tokenizer.tokenId('!')).toBe(0);
    expect(tokenizer.encode('!')).toEqual([vocab['!</w>']]);
    expect(tokenizer.tokenId('xyzzyplugh')).toBeUndefined();
  });
});
