// The App. B evaluation on the tiny pack: one photo, one prompt, every variant, with the
// CLIP scores recomputed independently from the generated images.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { decodeImage } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/types.ts';
import { PackRuntime } from '../pipeline/pack-runtime.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../pipeline/prompt.ts';
import {
  clipTextPooled,
  cosine,
  EVAL_VARIANTS,
  evaluateConcepts,
  promptWithoutPlaceholder,
  reportMarkdown,
  textImageComparable,
  type EvalEvent,
} from './clip-eval.ts';

let rt: PackRuntime;
let photo: RgbaImage;
beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'coffee.png'))));
});
afterAll(() => rt?.dispose());

describe('eval (App. B)', () => {
  it('helpers: cosine, the prompt without its placeholder, the pooled text output at end-of-text', async () => {
    expect(cosine([1, 0], [0, 2])).toBe(0);
    expect(cosine([1, 2], [2, 4])).toBeCloseTo(1, 12);
    expect(promptWithoutPlaceholder('a photo of S* on the beach', 'S*')).toBe('a photo of on the beach');
    expect(textImageComparable(rt)).toBe(true); // tiny: projection_dim 32 = text hidden 32
    const text = 'a photo of a dog';
    const tokens = tokenizeWithPlaceholder(rt, text, null, 0);
    const eos = 1 + rt.tokenizer.encode(text).length;
    const all = await rt.engine.noGrad(() => rt.engine.scopeAsync(() => encodePrompt(rt, tokens, null).read()));
    const C = rt.tokenDim;
    expect(await clipTextPooled(rt, text)).toEqual(all.slice(eos * C, (eos + 1) * C));
  });

  it('scores every variant; the no-hypernetwork concept has no LoRA; the report names its caveats', async () => {
    const events: EvalEvent[] = [];
    const report = await evaluateConcepts(
      rt,
      [{ id: 'coffee.png', image: photo }],
      {
        prompts: ['a photo of S* on a table'],
        placeholder: 'S*',
        tuningSteps: 2,
        samplingSteps: 2,
        guidance: 7.5,
        sampler: 'ddim',
        seed: 3,
        variants: EVAL_VARIANTS,
      },
      (e) => events.push(e),
    );
    expect(report.rows.map((r) => r.variant)).toEqual([...EVAL_VARIANTS]);
    for (const r of report.rows) {
      expect(r.imageSimilarity).toBeGreaterThanOrEqual(-1);
      expect(r.imageSimilarity).toBeLessThanOrEqual(1);
      expect(Number.isFinite(r.textSimilarity)).toBe(true);
    }
    // The events carry the per-image scores the rows average (one prompt: equal).
    const images = events.filter((e) => e.stage === 'image');
    expect(images.map((e) => (e.stage === 'image' ? e.imageSimilarity : NaN))).toEqual(
      report.rows.map((r) => r.imageSimilarity),
    );
    expect(report.means.map((m) => m.imageSimilarity)).toEqual(report.rows.map((r) => r.imageSimilarity));
    const md = reportMarkdown(report);
    console.info(md);
    expect(md).toContain('| coffee.png | no-hypernetwork |');
    expect(md).toContain("NOT the paper's text–image metric");
    expect(md).toContain('UNTRAINED');
  });
});
