import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsTensorInput } from '../packs/safetensors.ts';
import { parseStrictJson, jsonToPlain } from '../packs/strict-json.ts';
import type { ConceptData } from '../domain/types.ts';
import {
  CONCEPT_FILE_FORMAT,
  CONCEPT_MAX_HEADER_BYTES,
  ConceptFileError,
  exportConcept,
  importConcept,
  kohyaModuleName,
  PEFT_EMBEDDING_KEY,
  readConceptFile,
  type ConceptFileErrorCode,
  type ConceptPackInfo,
} from './concept-safetensors.ts';

const REF = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);
const unetConfig = JSON.parse(readFileSync(new URL('unet/config.json', REF), 'utf8')) as UNetConfig;
const golden = parseSafetensors(new Uint8Array(readFileSync(new URL('lora-goldens.safetensors', REF))));

const PACK: ConceptPackInfo = {
  hash: 'a3f1c0ffee0000000000000000000000000000000000000000000000000000aa',
  id: 'tiny-sd',
  tokenDim: 32, // tiny-sd text_encoder hidden_size
  rank: 4,
  targets: loraTargets(resolveUNetConfig(unetConfig)),
};

function makeConcept(seed = 1): ConceptData {
  const g = rng(seed);
  const r = PACK.rank;
  return {
    placeholder: '<likeness>',
    embedding: g.normals(PACK.tokenDim, 0.02),
    nearestWords: ['tabby', 'kitten', 'cat'],
    hardTokenId: 2368,
    rank: r,
    alpha: 4,
    blend: 0.35,
    lora: PACK.targets.map((t) => ({
      module: t.module,
      A: g.normals(r * t.in, 0.1),
      aShape: [r, t.in] as [number, number],
      B: g.normals(t.out * r, 0.01),
      bShape: [t.out, r] as [number, number],
    })),
    lossCurve: [0.31, 0.27, 0.2512345678901234, 0.19],
    packId: PACK.id,
    packHash: PACK.hash,
  };
}

function expectSameConcept(got: ConceptData, want: ConceptData): void {
  expect({ ...got, embedding: [...got.embedding], lora: [] }).toEqual({
    ...want,
    embedding: [...want.embedding],
    lora: [],
  });
  expect(got.lora.map((l) => l.module)).toEqual(want.lora.map((l) => l.module));
  got.lora.forEach((l, i) => {
    const w = want.lora[i];
    expect(l.aShape).toEqual(w.aShape);
    expect(l.bShape).toEqual(w.bShape);
    expect(l.A).toEqual(w.A); // bit-identical: exported as F32
    expect(l.B).toEqual(w.B);
  });
}

/** The tensors and metadata of a file, to rebuild it with changes. */
function unpack(bytes: Uint8Array): { tensors: SafetensorsTensorInput[]; metadata: Record<string, string> } {
  const f = parseSafetensors(bytes);
  return {
    tensors: f.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      data: f.rawBytes(t.name).slice(),
    })),
    metadata: { ...f.metadata },
  };
}

function rebuild(
  bytes: Uint8Array,
  change: (tensors: SafetensorsTensorInput[], metadata: Record<string, string>) => SafetensorsTensorInput[] | void,
): Uint8Array {
  const { tensors, metadata } = unpack(bytes);
  return writeSafetensors(change(tensors, metadata) ?? tensors, metadata);
}

function refusal(bytes: Uint8Array, pack = PACK): ConceptFileError {
  try {
    importConcept(bytes, pack);
  } catch (e) {
    if (e instanceof ConceptFileError) return e;
    throw e;
  }
  throw new Error('import accepted a file it should refuse');
}

function expectRefused(bytes: Uint8Array, code: ConceptFileErrorCode, message?: RegExp): ConceptFileError {
  const e = refusal(bytes);
  expect(e.code, e.message).toBe(code);
  if (message) expect(e.message).toMatch(message);
  // Every refusal says what to do.
  expect(e.message).toMatch(/(export|get|choose|personalize|load|reload|use)\b/i);
  return e;
}

const valid = exportConcept(makeConcept(), { createdAt: Date.UTC(2026, 10, 27, 12, 0, 0) });
const validKohya = exportConcept(makeConcept(), { naming: 'kohya', createdAt: 0 });

describe('concept file: export/import round trip', () => {
  it('peft naming: import(export(c)) is c, bit for bit', () => {
    const c = makeConcept(7);
    const read = readConceptFile(exportConcept(c, { createdAt: Date.UTC(2026, 0, 2, 3, 4, 5) }), PACK);
    expectSameConcept(read.concept, c);
    expect(read.naming).toBe('peft');
    expect(read.createdAt).toBe('2026-01-02T03:04:05.000Z');
  });

  it('kohya naming: import(export(c)) is c, bit for bit', () => {
    const c = makeConcept(8);
    c.alpha = 1.7; // not representable in f32: the alpha tensors hold fround(alpha), the metadata the exact value
    const read = readConceptFile(exportConcept(c, { naming: 'kohya' }), PACK);
    expectSameConcept(read.concept, c);
    expect(read.naming).toBe('kohya');
  });

  it('keeps extra metadata and refuses to let it override the format keys', () => {
    const c = makeConcept();
    const read = readConceptFile(
      exportConcept(c, { extraMetadata: { name: 'Grey mug', thumbnail_png: 'iVBOR' } }),
      PACK,
    );
    expect(read.metadata.name).toBe('Grey mug');
    expect(() => exportConcept(c, { extraMetadata: { base_pack_hash: 'x' } })).toThrow(ConceptFileError);
  });

  it('writes the metadata the format promises', () => {
    const m = parseSafetensors(valid).metadata;
    expect(m.format).toBe(CONCEPT_FILE_FORMAT);
    expect(m.base_pack_hash).toBe(PACK.hash);
    expect(m.base_pack_id).toBe('tiny-sd');
    expect(m.placeholder).toBe('<likeness>');
    expect(m.nearest_token_id).toBe('2368');
    expect(JSON.parse(m.nearest_words)).toEqual(['tabby', 'kitten', 'cat']);
    expect([m.rank, m.alpha, m.blend]).toEqual(['4', '4', '0.35']);
    expect(JSON.parse(m.loss_curve)).toEqual([0.31, 0.27, 0.2512345678901234, 0.19]);
    expect(m.created_at).toBe('2026-11-27T12:00:00.000Z');
  });

  it('records where tuning started (class word, encoder, untrained encoder) and reads it back', () => {
    const starts = [
      { kind: 'class-word', word: 'dog' },
      { kind: 'encoder', trained: true },
      { kind: 'encoder', trained: false },
    ] as const;
    for (const start of starts) {
      for (const naming of ['peft', 'kohya'] as const) {
        const c = { ...makeConcept(9), start };
        const bytes = exportConcept(c, { naming });
        const m = parseSafetensors(bytes).metadata;
        expect(m.start).toBe(
          start.kind === 'class-word' ? 'class-word' : start.trained ? 'encoder' : 'untrained-encoder',
        );
        expect(m.class_word).toBe(start.kind === 'class-word' ? 'dog' : undefined);
        expectSameConcept(importConcept(bytes, PACK), c);
      }
    }
    // Files written before the start was recorded have neither key: the start is unknown.
    expect(importConcept(valid, PACK).start).toBeUndefined();
    expect(() => exportConcept({ ...makeConcept(), start: { kind: 'class-word', word: 'big dog' } })).toThrow(
      /class word/,
    );
  });

  it('accepts F16 and BF16 tensors and a (C,) embedding', () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const c = makeConcept(3);
      const bytes = rebuild(exportConcept(c), (tensors) =>
        tensors.map((t) => {
          const values = new Float32Array(new Uint8Array(t.data as Uint8Array).buffer);
          return { ...t, dtype, data: values, shape: t.name === PEFT_EMBEDDING_KEY ? [PACK.tokenDim] : t.shape };
        }),
      );
      const got = importConcept(bytes, PACK);
      const tol = dtype === 'F16' ? 1e-3 : 8e-3; // relative rounding of the format
      got.lora.forEach((l, i) => {
        c.lora[i].A.forEach((v, j) => expect(Math.abs(l.A[j] - v)).toBeLessThanOrEqual(tol * Math.abs(v) + 1e-7));
      });
      expect(got.embedding.length).toBe(PACK.tokenDim);
    }
  });
});

describe('concept file: names other tools read', () => {
  it('peft names are exactly the names diffusers save_lora_weights wrote (lora-goldens)', () => {
    const ours = parseSafetensors(valid);
    const loraNames = ours
      .names()
      .filter((n) => n !== PEFT_EMBEDDING_KEY)
      .sort();
    expect(loraNames).toEqual(golden.names().sort());
    for (const name of loraNames) expect(ours.info(name).shape).toEqual(golden.info(name).shape);
    // Every key diffusers' load_lora_weights sees must contain "lora", or it refuses the file.
    expect(ours.names().every((n) => n.includes('lora'))).toBe(true);
  });

  it('writes a PEFT LoraConfig under lora_adapter_metadata with fields the real one has', () => {
    const ours = jsonToPlain(parseStrictJson(parseSafetensors(valid).metadata.lora_adapter_metadata)) as Record<
      string,
      unknown
    >;
    const real = JSON.parse(golden.metadata.lora_adapter_metadata) as Record<string, unknown>;
    for (const key of Object.keys(ours)) expect(Object.hasOwn(real, key), key).toBe(true);
    expect(ours['unet.r']).toBe(4);
    expect(ours['unet.lora_alpha']).toBe(4);
    expect(ours['unet.peft_type']).toBe('LORA');
    expect(new Set(ours['unet.target_modules'] as string[])).toEqual(new Set(PACK.targets.map((t) => t.module)));
  });

  it('kohya names follow sd-scripts (to_out.0 → to_out_0) with scalar F32 alphas', () => {
    const f = parseSafetensors(validKohya);
    expect(kohyaModuleName('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0')).toBe(
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0',
    );
    const q = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
    expect(f.info(`${q}.lora_down.weight`).shape).toEqual([4, 32]);
    expect(f.info(`${q}.lora_up.weight`).shape).toEqual([32, 4]);
    expect(f.info(`${q}.alpha`)).toMatchObject({ dtype: 'F32', shape: [] });
    expect(f.float32(`${q}.alpha`)[0]).toBe(4);
    expect(f.info('bundle_emb.<likeness>.string_to_param.*').shape).toEqual([1, 32]);
    expect(f.names().length).toBe(3 * PACK.targets.length + 1);
  });

  it('accepts the real diffusers LoRA file wrapped as a concept', () => {
    const tensors: SafetensorsTensorInput[] = golden.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      data: golden.rawBytes(t.name),
    }));
    const emb = rng(5).normals(PACK.tokenDim, 0.02);
    tensors.push({ name: 'emb_params', dtype: 'F32', shape: [1, PACK.tokenDim], data: emb }); // A1111/kohya TI name
    const bytes = writeSafetensors(tensors, {
      ...golden.metadata, // format "pt" is replaced below; lora_adapter_metadata kept as diffusers wrote it
      format: CONCEPT_FILE_FORMAT,
      base_pack_hash: PACK.hash,
      base_pack_id: PACK.id,
      placeholder: 'S*',
      nearest_token_id: '1',
      nearest_words: '["mug"]',
      rank: '4',
      alpha: '4',
      blend: '0',
      loss_curve: '[]',
      created_at: '2026-11-27T00:00:00Z',
    });
    const c = importConcept(bytes, PACK);
    expect(c.lora.length).toBe(32);
    for (const l of c.lora) {
      expect(l.A).toEqual(golden.float32(`unet.${l.module}.lora_A.weight`));
      expect(l.B).toEqual(golden.float32(`unet.${l.module}.lora_B.weight`));
    }
    expect(c.embedding).toEqual(emb);
  });
});

describe('concept file: refusals', () => {
  const withMeta = (patch: Record<string, string | undefined>, from = valid) =>
    rebuild(from, (_, m) => {
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete m[k];
        else m[k] = v;
      }
    });

  it('a concept made for another pack, naming both packs', () => {
    const other = exportConcept({ ...makeConcept(), packId: 'sd15-likeness', packHash: 'ffee'.repeat(16) });
    const e = expectRefused(other, 'wrong-pack');
    expect(e.message).toContain('sd15-likeness');
    expect(e.message).toContain('tiny-sd');
    expect(e.message).toContain('ffeeffee');
    expect(e.message).toContain(PACK.hash.slice(0, 16));
  });

  it('a LoRA rank other than the pack’s', () => {
    const c = makeConcept();
    c.rank = 2;
    c.lora = c.lora.map((l) => ({
      ...l,
      A: l.A.slice(0, 2 * l.aShape[1]),
      aShape: [2, l.aShape[1]],
      B: new Float32Array(l.bShape[0] * 2),
      bShape: [l.bShape[0], 2],
    }));
    expectRefused(exportConcept(c), 'wrong-pack', /rank 2/);
  });

  it('a missing module', () => {
    const gone = `unet.${PACK.targets[5].module}.lora_B.weight`;
    const e = expectRefused(
      rebuild(valid, (t) => t.filter((x) => x.name !== gone)),
      'missing-tensor',
    );
    expect(e.field).toBe(gone);
    expectRefused(
      rebuild(validKohya, (t) => t.filter((x) => !x.name.endsWith('attn2_to_k.alpha'))),
      'missing-tensor',
      /alpha/,
    );
    expectRefused(
      rebuild(valid, (t) => t.filter((x) => x.name !== PEFT_EMBEDDING_KEY)),
      'missing-tensor',
      /lora_ti\.emb_params/,
    );
  });

  it('an extra unknown tensor', () => {
    const extra = (name: string) =>
      rebuild(valid, (t) => [...t, { name, dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    expectRefused(
      extra('unet.down_blocks.3.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight'),
      'unknown-tensor',
      /different model/,
    );
    expectRefused(extra('text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight'), 'unknown-tensor');
    expectRefused(extra('payload'), 'unknown-tensor', /"payload"/);
  });

  it('both namings, or two embeddings', () => {
    const kohyaTensor = unpack(validKohya).tensors.find((t) => t.name.endsWith('.lora_down.weight'))!;
    expectRefused(
      rebuild(valid, (t) => [...t, kohyaTensor]),
      'mixed-naming',
    );
    const emb = unpack(valid).tensors.find((t) => t.name === PEFT_EMBEDDING_KEY)!;
    expectRefused(
      rebuild(valid, (t) => [...t, { ...emb, name: 'emb_params' }]),
      'mixed-naming',
      /two embeddings/,
    );
  });

  it('a wrong shape', () => {
    const name = `unet.${PACK.targets[0].module}.lora_A.weight`;
    const e = expectRefused(
      rebuild(valid, (t) => t.map((x) => (x.name === name ? { ...x, shape: [8, 16] } : x))),
      'shape',
      /\(rank, in\) = \(4, 32\)/,
    );
    expect(e.field).toBe(name);
    // transposed B
    const b = `unet.${PACK.targets[9].module}.lora_B.weight`;
    expectRefused(
      rebuild(valid, (t) => t.map((x) => (x.name === b ? { ...x, shape: [x.shape[1], x.shape[0]] } : x))),
      'shape',
    );
    // embedding of the wrong width
    expectRefused(
      rebuild(valid, (t) => t.map((x) => (x.name === PEFT_EMBEDDING_KEY ? { ...x, shape: [2, 16] } : x))),
      'shape',
      /one vector of 32 values/,
    );
    // a kohya alpha that is not a scalar
    expectRefused(
      rebuild(validKohya, (t) => t.map((x) => (x.name.endsWith('attn1_to_q.alpha') ? { ...x, shape: [1, 1] } : x))),
      'shape',
    );
  });

  it('NaN, infinite and out-of-range values', () => {
    const poke = (from: Uint8Array, name: string, value: number) =>
      rebuild(from, (t) =>
        t.map((x) => {
          if (x.name !== name) return x;
          const f = new Float32Array(new Uint8Array(x.data as Uint8Array).buffer);
          f[f.length - 1] = value;
          return { ...x, data: f };
        }),
      );
    const a = `unet.${PACK.targets[3].module}.lora_A.weight`;
    expectRefused(poke(valid, a, NaN), 'non-finite', /NaN/);
    expectRefused(poke(valid, a, -Infinity), 'non-finite', /infinite/);
    expectRefused(poke(valid, PEFT_EMBEDDING_KEY, 1e6), 'non-finite', /beyond/);
    expectRefused(poke(validKohya, `${kohyaModuleName(PACK.targets[0].module)}.alpha`, NaN), 'non-finite');
  });

  it('a kohya alpha or a PEFT config disagreeing with the metadata', () => {
    expectRefused(withMeta({ alpha: '8' }, validKohya), 'inconsistent', /alpha/);
    expectRefused(withMeta({ alpha: '8' }), 'inconsistent', /lora_alpha/);
  });

  it('a non-float dtype', () => {
    const name = `unet.${PACK.targets[2].module}.lora_A.weight`;
    expectRefused(
      rebuild(valid, (t) => t.map((x) => (x.name === name ? { ...x, dtype: 'I32' } : x))),
      'dtype',
      /I32/,
    );
    expectRefused(
      rebuild(valid, (t) => t.map((x) => (x.name === name ? { ...x, dtype: 'F64', shape: [2, 32] } : x))),
      'dtype',
      /F64/,
    );
  });

  it('bad metadata', () => {
    expectRefused(withMeta({ format: undefined }), 'not-a-concept');
    expectRefused(withMeta({ format: 'pt' }), 'not-a-concept');
    expectRefused(withMeta({ format: 'likeness-concept/2' }), 'newer-format', /Reload/);
    expectRefused(withMeta({ base_pack_hash: undefined }), 'metadata', /base_pack_hash/);
    expectRefused(withMeta({ blend: '1.5' }), 'metadata', /blend/);
    expectRefused(withMeta({ blend: '-0.1' }), 'metadata', /blend/);
    expectRefused(withMeta({ blend: 'NaN' }), 'metadata', /blend/);
    expectRefused(withMeta({ blend: '' }), 'metadata', /blend/);
    expectRefused(withMeta({ blend: '0x1' }), 'metadata', /blend/);
    expectRefused(withMeta({ alpha: '0' }), 'metadata', /alpha/);
    expectRefused(withMeta({ alpha: '1e999' }), 'metadata', /alpha/);
    expectRefused(withMeta({ rank: 'four' }), 'metadata', /rank/);
    expectRefused(withMeta({ rank: '4.0' }), 'metadata', /rank/);
    expectRefused(withMeta({ placeholder: '' }), 'metadata', /placeholder/);
    expectRefused(withMeta({ placeholder: 'x'.repeat(65) }), 'metadata', /64/);
    expectRefused(withMeta({ placeholder: 'a\u0000b' }), 'metadata', /control/);
    expectRefused(withMeta({ nearest_token_id: '-1' }), 'metadata', /nearest_token_id/);
    expectRefused(withMeta({ nearest_words: 'tabby, kitten' }), 'metadata', /nearest_words.*JSON/);
    expectRefused(withMeta({ nearest_words: '[1, 2]' }), 'metadata', /nearest_words/);
    expectRefused(withMeta({ nearest_words: '{"a": "b"}' }), 'metadata', /nearest_words/);
    expectRefused(withMeta({ nearest_words: '[[[[[["deep"]]]]]]' }), 'metadata', /nearest_words/);
    expectRefused(withMeta({ loss_curve: '[0.1, "x"]' }), 'metadata', /loss_curve/);
    expectRefused(withMeta({ loss_curve: '[1e999]' }), 'metadata', /loss_curve/);
    expectRefused(withMeta({ created_at: 'yesterday' }), 'metadata', /created_at/);
    expectRefused(withMeta({ lora_adapter_metadata: '{"unet.r": 4' }), 'metadata', /lora_adapter_metadata/);
    expectRefused(withMeta({ start: 'vibes' }), 'metadata', /start.*class-word/);
    expectRefused(withMeta({ start: 'class-word' }), 'metadata', /class_word.*missing/);
    expectRefused(withMeta({ start: 'class-word', class_word: 'big dog' }), 'metadata', /class_word/);
    expectRefused(withMeta({ start: 'encoder', class_word: 'dog' }), 'metadata', /class_word/);
    expectRefused(withMeta({ class_word: 'dog' }), 'metadata', /start/);
  });

  it('a truncated file, wherever it is cut', () => {
    for (const keep of [0, 3, 8, 9, 100, 700, valid.length - 1000, valid.length - 1]) {
      const e = refusal(valid.subarray(0, keep));
      expect(['truncated', 'not-safetensors'], `${keep}: ${e.message}`).toContain(e.code);
    }
    expectRefused(valid.subarray(0, valid.length - 1), 'truncated', /get the file again/);
    expectRefused(valid.subarray(0, 200), 'truncated');
  });

  it('bytes appended after the last tensor', () => {
    const longer = new Uint8Array(valid.length + 4);
    longer.set(valid);
    expectRefused(longer, 'corrupt');
  });

  it('a header over the 1 MiB cap, and a file larger than any concept for the pack', () => {
    const big = rebuild(valid, (_, m) => {
      m.padding = 'x'.repeat(CONCEPT_MAX_HEADER_BYTES + 1000);
    });
    expectRefused(big, 'header-too-large', /1048576/);
    // A header just under the cap is fine by itself; tensors past the pack's bound are not.
    const huge = rebuild(valid, (t) => [
      ...t,
      { name: 'z', dtype: 'U8', shape: [2_000_000], data: new Uint8Array(2_000_000) },
    ]);
    expectRefused(huge, 'too-large');
    expect(() =>
      exportConcept(makeConcept(), { extraMetadata: { padding: 'x'.repeat(CONCEPT_MAX_HEADER_BYTES) } }),
    ).toThrow(/header/);
  });

  it('something that is not safetensors at all', () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
    expectRefused(png, 'not-safetensors');
    expectRefused(new TextEncoder().encode('{"placeholder": "S*", "embedding": [0.1, 0.2]}'), 'not-safetensors');
    expectRefused(new Uint8Array(0), 'not-safetensors', /empty/);
    expectRefused(new Uint8Array([1, 2, 3]), 'not-safetensors');
    // a length field that fits, but no JSON object after it
    const notJson = new Uint8Array(24);
    notJson[0] = 16;
    notJson.fill(0x41, 8);
    expectRefused(notJson, 'not-safetensors');
    // a plain diffusers LoRA (valid safetensors, no concept metadata)
    expectRefused(new Uint8Array(readFileSync(new URL('lora-goldens.safetensors', REF))), 'not-a-concept');
  });

  it('export refuses concepts import would refuse', () => {
    const nan = makeConcept();
    nan.lora[0].B[3] = NaN;
    expect(() => exportConcept(nan)).toThrow(ConceptFileError);
    const badShape = makeConcept();
    badShape.lora[1].aShape = [3, badShape.lora[1].aShape[1]];
    expect(() => exportConcept(badShape)).toThrow(/shapes/);
    expect(() => exportConcept({ ...makeConcept(), blend: 2 })).toThrow(/blend/);
    expect(() => exportConcept({ ...makeConcept(), placeholder: ' ' })).toThrow(/placeholder/);
    expect(() => exportConcept({ ...makeConcept(), lossCurve: [0.1, NaN] })).toThrow(/loss curve/);
  });
});

describe('concept file: corrupted copies', () => {
  // A valid import of a corrupted copy must still be a concept the runtime can use as-is.
  function expectUsable(c: ConceptData): void {
    expect(c.rank).toBe(PACK.rank);
    expect(c.embedding.length).toBe(PACK.tokenDim);
    expect(c.embedding.every(Number.isFinite)).toBe(true);
    expect(c.blend >= 0 && c.blend <= 1).toBe(true);
    expect(Number.isFinite(c.alpha) && c.alpha > 0).toBe(true);
    expect(c.placeholder.length > 0 && [...c.placeholder].length <= 64).toBe(true);
    expect(Array.isArray(c.nearestWords) && c.nearestWords.every((w) => typeof w === 'string')).toBe(true);
    expect(c.lossCurve.every(Number.isFinite)).toBe(true);
    expect(c.packHash).toBe(PACK.hash);
    expect(c.lora.map((l) => l.module)).toEqual(PACK.targets.map((t) => t.module));
    c.lora.forEach((l, i) => {
      const t = PACK.targets[i];
      expect(l.aShape).toEqual([PACK.rank, t.in]);
      expect(l.bShape).toEqual([t.out, PACK.rank]);
      expect(l.A.length).toBe(PACK.rank * t.in);
      expect(l.B.length).toBe(t.out * PACK.rank);
      expect(l.A.every((v) => Math.abs(v) <= 65504) && l.B.every((v) => Math.abs(v) <= 65504)).toBe(true);
    });
  }

  it('400 random byte flips and truncations: each refused with ConceptFileError or imported whole', () => {
    const g = rng(20261127);
    const codes = new Map<string, number>();
    let accepted = 0;
    const started = performance.now();
    for (const [source, sourceName] of [
      [valid, 'peft'],
      [validKohya, 'kohya'],
    ] as const) {
      const headerEnd = 8 + new DataView(source.buffer, source.byteOffset).getUint32(0, true);
      for (let i = 0; i < 200; i++) {
        let bytes = source.slice();
        const kind = i % 4;
        if (kind === 0 || kind === 1) {
          // Flips: half of the cases aim at the header, where the structure lives.
          const flips = g.int(1, 8);
          for (let k = 0; k < flips; k++) {
            const at = kind === 0 ? g.int(0, headerEnd - 1) : g.int(0, bytes.length - 1);
            bytes[at] ^= 1 << g.int(0, 7);
          }
        } else if (kind === 2) {
          bytes = bytes.slice(0, g.int(0, bytes.length - 1));
        } else {
          // Overwrite a run with random bytes, then maybe truncate.
          const at = g.int(0, headerEnd - 1);
          const len = g.int(1, 32);
          for (let k = at; k < Math.min(bytes.length, at + len); k++) bytes[k] = g.int(0, 255);
          if (g.uniform() < 0.3) bytes = bytes.slice(0, g.int(headerEnd - 50, bytes.length));
        }
        const t0 = performance.now();
        try {
          expectUsable(importConcept(bytes, PACK));
          accepted++;
        } catch (e) {
          if (!(e instanceof ConceptFileError)) {
            throw new Error(`${sourceName} mutation ${i} threw ${(e as Error)?.name}: ${(e as Error)?.message}`, {
              cause: e,
            });
          }
          expect(e.message.length).toBeGreaterThan(20);
          codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
        }
        expect(performance.now() - t0).toBeLessThan(1000); // no pathological slowness
      }
    }
    // Both outcomes happen (flips in tensor data import as changed values), and the refusals
    // are spread over several codes, not one catch-all.
    expect(accepted).toBeGreaterThan(10);
    expect(codes.size).toBeGreaterThanOrEqual(4);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});

describe('concept file: a k-vector placeholder', () => {
  it('round-trips k vectors with their k hard tokens, and refuses a count that disagrees', () => {
    const c = { ...makeConcept(), embedding: rng(9).normals(3 * PACK.tokenDim, 0.02), hardTokenIds: [320, 1125, 2368] };
    const bytes = exportConcept(c);
    const f = parseSafetensors(bytes);
    expect(f.tensors.find((t) => t.name === PEFT_EMBEDDING_KEY)!.shape).toEqual([3, PACK.tokenDim]);
    expect(f.metadata.nearest_token_ids).toBe('[320,1125,2368]');
    const back = importConcept(bytes, PACK);
    expect(back.hardTokenIds).toEqual([320, 1125, 2368]);
    expect(back.embedding).toEqual(c.embedding);
    const two = exportConcept({ ...c, embedding: c.embedding.slice(0, 2 * PACK.tokenDim), hardTokenIds: [1, 2] });
    const tampered = parseSafetensors(two);
    const meta = { ...tampered.metadata, nearest_token_ids: '[1,2,3]' };
    const re = writeSafetensors(
      tampered.tensors.map((t) => ({
        name: t.name,
        dtype: 'F32',
        shape: t.shape,
        data: new Float32Array(tampered.rawBytes(t.name).slice().buffer),
      })),
      meta,
    );
    expect(() => importConcept(re, PACK)).toThrow(/needs 3 vectors of 32 values/);
    expect(() => exportConcept({ ...c, hardTokenIds: [1, 2, 3, 4, 5] })).toThrow(/does not divide/);
  });
});
