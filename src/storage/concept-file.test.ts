import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSafetensors, writeSafetensors } from '../packs/safetensors.ts';
import type { ConceptRecord } from './concept-record.ts';
import { CONCEPT_FORMAT, conceptFileName, exportConceptFile, importConceptFile } from './concept-file.ts';
import { StorageError } from './storage-error.ts';

// A real small PNG for the thumbnail: the first bytes of nothing would not pass the checks.
const thumbnail = (() => {
  const png = new Uint8Array(readFileSync('/work/shared/data/photos/chelsea.png'));
  return png; // 451 × 300, under the 512-pixel thumbnail bound
})();

function record(): ConceptRecord {
  const r = 2;
  const seq = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) / 3);
  return {
    id: 'orig',
    name: 'Grey mug',
    placeholder: 'S*',
    embedding: seq(8, 1),
    nearestWords: ['mug', 'cup', 'pottery'],
    hardTokenId: 16405,
    rank: r,
    alpha: 2,
    blend: 0.25,
    lora: [
      {
        module: 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q',
        A: seq(r * 4, 2),
        aShape: [r, 4],
        B: seq(6 * r, 3),
        bShape: [6, r],
      },
      {
        module: 'mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0',
        A: seq(r * 4, 5),
        aShape: [r, 4],
        B: seq(4 * r, 7),
        bShape: [4, r],
      },
      {
        module: 'up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k',
        A: seq(r * 3, 11),
        aShape: [r, 3],
        B: seq(4 * r, 13),
        bShape: [4, r],
      },
    ],
    lossCurve: [0.31, 0.27, 0.22],
    packId: 'tiny-sd',
    packHash: 'f00d',
    thumbnail,
    createdAt: Date.UTC(2025, 4, 6, 7, 8, 9),
    updatedAt: Date.UTC(2025, 4, 6, 7, 8, 9),
    settings: {
      steps: 12,
      seed: 7,
      crop: { x: 75, y: 0, size: 300 },
      source: { name: 'mug.jpg', width: 451, height: 300 },
      generate: null,
    },
  };
}

const opts = { newId: () => 'new-id', now: 1_700_000_000_000 };
const expectBad = (f: () => unknown, pattern: RegExp) => {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).kind).toBe('bad-file');
  expect((err as StorageError).message).toMatch(pattern);
};

describe('concept files', () => {
  it('exports PEFT names and metadata that a safetensors reader sees', () => {
    const f = parseSafetensors(exportConceptFile(record()));
    expect(f.names().sort()).toEqual(
      [
        'emb_params',
        'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight',
        'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight',
        'unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_A.weight',
        'unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_B.weight',
        'unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.lora_A.weight',
        'unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.lora_B.weight',
      ].sort(),
    );
    expect(f.info('emb_params').shape).toEqual([1, 8]);
    expect(f.info('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight').shape).toEqual([
      6, 2,
    ]);
    expect(f.metadata).toMatchObject({
      format: CONCEPT_FORMAT,
      placeholder: 'S*',
      rank: '2',
      alpha: '2',
      blend: '0.25',
      base_pack_hash: 'f00d',
      nearest_words: '["mug","cup","pottery"]',
    });
  });

  it('exports kohya names with alpha tensors and a bundled embedding', () => {
    const f = parseSafetensors(exportConceptFile(record(), 'kohya'));
    const k = 'lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0';
    expect(f.info(`${k}.lora_down.weight`).shape).toEqual([2, 4]);
    expect(f.info(`${k}.lora_up.weight`).shape).toEqual([4, 2]);
    expect(f.info(`${k}.alpha`).shape).toEqual([]);
    expect([...f.float32(`${k}.alpha`)]).toEqual([2]);
    expect(f.info('bundle_emb.S*.string_to_param.*').shape).toEqual([1, 8]);
  });

  it.each(['peft', 'kohya'] as const)('round-trips every field (%s)', (naming) => {
    const original = record();
    const { record: back, warnings } = importConceptFile(exportConceptFile(original, naming), 'x.safetensors', opts);
    expect(warnings).toEqual([]);
    const { id: _id, updatedAt: _u, ...rest } = original;
    expect(back).toEqual({
      ...rest,
      id: 'new-id',
      updatedAt: opts.now,
      lora: [...original.lora].sort((a, b) => a.module.localeCompare(b.module)),
    });
  });

  it('warns when the file was made for another pack', () => {
    const { warnings } = importConceptFile(exportConceptFile(record()), 'x.safetensors', {
      ...opts,
      currentPack: { id: 'sd15', hash: 'beef' },
    });
    expect(warnings[0]).toMatch(/made for the model pack “tiny-sd”, not the loaded “sd15”/);
  });

  it('accepts half-precision tensors', () => {
    const f = parseSafetensors(exportConceptFile(record()));
    const tensors = f
      .names()
      .map((name) => ({ name, dtype: 'F16' as const, shape: f.info(name).shape, data: f.float32(name) }));
    const { record: back } = importConceptFile(writeSafetensors(tensors, f.metadata), 'half.safetensors', opts);
    expect(back.embedding[1]).toBeCloseTo(record().embedding[1], 3);
  });

  it('refuses files that are not concepts, or do not hold together', () => {
    const good = exportConceptFile(record());
    const f = parseSafetensors(good);
    const rewrite = (
      edit: (
        t: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[],
        m: Record<string, string>,
      ) => void,
    ) => {
      const tensors = f
        .names()
        .map((name) => ({ name, dtype: 'F32' as const, shape: [...f.info(name).shape], data: f.float32(name) }));
      const meta = { ...f.metadata };
      edit(tensors, meta);
      return writeSafetensors(tensors, meta);
    };
    expectBad(() => importConceptFile(new TextEncoder().encode('hello'), 'a.safetensors', opts), /a.safetensors/);
    expectBad(
      () => importConceptFile(good.subarray(0, good.length - 3), 'cut.safetensors', opts),
      /not a usable concept file/,
    );
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(0, 50 * 1024 * 1024, true);
    expectBad(() => importConceptFile(huge, 'h.safetensors', opts), /not a usable concept file/);
    expectBad(() => importConceptFile(writeSafetensors([]), 'e.safetensors', opts), /no Likeness concept metadata/);
    expectBad(
      () =>
        importConceptFile(
          rewrite((_, m) => (m.format = 'other/9')),
          'f',
          opts,
        ),
      /format is "other\/9"/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((t) => t.push({ name: 'evil', dtype: 'F32', shape: [1], data: new Float32Array(1) })),
          'f',
          opts,
        ),
      /unexpected tensor “evil”/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((t) =>
            t.splice(
              t.findIndex((x) => x.name.endsWith('to_q.lora_B.weight')),
              1,
            ),
          ),
          'f',
          opts,
        ),
      /lacks its B/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((_, m) => (m.rank = '3')),
          'f',
          opts,
        ),
      /rank 2\/2, not 3/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((t) => (t.find((x) => x.name === 'emb_params')!.data[0] = NaN)),
          'f',
          opts,
        ),
      /non-finite/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((_, m) => (m.nearest_words = '{"a":1}')),
          'f',
          opts,
        ),
      /nearest_words” has the wrong shape/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((_, m) => (m.placeholder = 'x'.repeat(65))),
          'f',
          opts,
        ),
      /longer than 64/,
    );
    expectBad(
      () =>
        importConceptFile(
          rewrite((_, m) => (m.thumbnail_png = btoa('GIF89a....'))),
          'f',
          opts,
        ),
      /thumbnail is not a small PNG/,
    );
  });

  it('names files safely', () => {
    expect(conceptFileName({ name: 'My mug / v2 ☕' })).toBe('My-mug-v2.safetensors');
    expect(conceptFileName({ name: '../..' }, 'kohya')).toBe('concept.kohya.safetensors');
  });
});
