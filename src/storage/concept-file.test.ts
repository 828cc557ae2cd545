// The library's record layer over the concept format: name, settings, thumbnail and dates
// round-trip; a damaged or missing library field falls back without failing the import; a
// concept from another pack (or with no pack loaded) is refused. The format itself — tensor
// names, shapes, dtypes, metadata checks, corrupted files — is tested in
// concept-safetensors.test.ts.
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsTensorInput } from '../packs/safetensors.ts';
import { tinyManifestBase } from '../../test/test-pack.ts';
import { pngChunk, PNG_SIGNATURE } from '../image/png-text.ts';
import {
  conceptFileName,
  defaultSettings,
  exportConceptFile,
  importConceptFile,
  MAX_THUMBNAIL_BYTES,
  RECORD_METADATA_KEYS,
} from './concept-file.ts';
import type { ConceptRecord } from './concept-record.ts';
import { ConceptFileError, readConceptFile, type ConceptPackInfo } from './concept-safetensors.ts';
import { StorageError } from './storage-error.ts';

// The tiny pack's shapes, derived from its manifest's architecture as the UI gets them.
const arch = tinyManifestBase().architecture;
const PACK: ConceptPackInfo = {
  id: 'tiny-sd',
  hash: 'c0ffee'.padEnd(64, '0'),
  tokenDim: arch.textEncoder.hidden_size,
  rank: arch.lora.rank,
  targets: loraTargets(resolveUNetConfig(arch.unet)),
};

/** A whole w × h RGBA PNG (filter 0 rows, zlib), built independently of the code under test. */
function png(w: number, h: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const rows = new Uint8Array(h * (1 + 4 * w));
  for (let i = 0; i < rows.length; i++) rows[i] = i % (1 + 4 * w) === 0 ? 0 : (i * 37) & 0xff;
  const parts = [
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', new Uint8Array(deflateSync(rows))),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const THUMB = png(16, 16);

function record(seed = 1): ConceptRecord {
  const g = rng(seed);
  const r = PACK.rank;
  return {
    id: 'orig',
    name: 'Grey mug',
    placeholder: 'S*',
    embedding: g.normals(PACK.tokenDim, 0.02),
    nearestWords: ['mug', 'cup', 'pottery'],
    hardTokenId: 16405,
    rank: r,
    alpha: 4,
    blend: 0.25,
    lora: PACK.targets.map((t) => ({
      module: t.module,
      A: g.normals(r * t.in, 0.1),
      aShape: [r, t.in] as [number, number],
      B: g.normals(t.out * r, 0.01),
      bShape: [t.out, r] as [number, number],
    })),
    lossCurve: [0.31, 0.27, 0.22],
    packId: PACK.id,
    packHash: PACK.hash,
    thumbnail: THUMB,
    createdAt: Date.UTC(2025, 4, 6, 7, 8, 9),
    updatedAt: Date.UTC(2025, 4, 7, 1, 2, 3),
    settings: {
      steps: 12,
      seed: 7,
      crop: { x: 75, y: 0, size: 300 },
      source: { name: 'mug.jpg', width: 451, height: 300 },
      generate: { steps: 25, guidance: 7.5, sampler: 'dpmpp-2m', blend: 0.3, batch: 2 },
    },
  };
}

const opts = { fileName: 'mug.safetensors', newId: () => 'new-id' };

/** The file with its library metadata changed (tensors and format metadata untouched). */
function withMetadata(bytes: Uint8Array, change: (m: Record<string, string>) => void): Uint8Array {
  const f = parseSafetensors(bytes);
  const tensors: SafetensorsTensorInput[] = f.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    data: f.rawBytes(t.name).slice(),
  }));
  const metadata = { ...f.metadata };
  change(metadata);
  return writeSafetensors(tensors, metadata);
}

function refusedWith(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).code).toBe('bad-file');
    return e as StorageError;
  }
  throw new Error('the import was accepted');
}

describe('concept file: library record layer', () => {
  it.each(['peft', 'kohya'] as const)('round-trips the record: name, settings, thumbnail, dates (%s)', (naming) => {
    const original = record();
    const { record: back, warnings } = importConceptFile(exportConceptFile(original, naming), PACK, opts);
    expect(warnings).toEqual([]);
    expect(back).toEqual({ ...original, id: 'new-id' });
  });

  it('writes the format’s own file with the library keys beside it', () => {
    const bytes = exportConceptFile(record());
    // The strict reader of the one format reads it; the library keys are extra metadata.
    const read = readConceptFile(bytes, PACK);
    expect(read.createdAt).toBe('2025-05-06T07:08:09.000Z');
    expect(read.metadata[RECORD_METADATA_KEYS.name]).toBe('Grey mug');
    expect(JSON.parse(read.metadata[RECORD_METADATA_KEYS.settings])).toEqual(record().settings);
    expect(read.metadata[RECORD_METADATA_KEYS.updatedAt]).toBe('2025-05-07T01:02:03.000Z');
    expect(read.metadata[RECORD_METADATA_KEYS.thumbnail]).toBe(Buffer.from(THUMB).toString('base64'));
    expect(read.metadata).not.toHaveProperty('hard_token_id');
    expect(read.metadata.nearest_token_id).toBe('16405');
  });

  it('leaves out a thumbnail that is not a small PNG, and still exports', () => {
    for (const thumbnail of [new Uint8Array(0), png(600, 8), Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 1, 2, 3)]) {
      const bytes = exportConceptFile({ ...record(), thumbnail });
      expect(parseSafetensors(bytes).metadata).not.toHaveProperty(RECORD_METADATA_KEYS.thumbnail);
      expect(importConceptFile(bytes, PACK, opts).record.thumbnail).toEqual(new Uint8Array(0));
    }
  });

  it('refuses a concept made for another pack with ConceptFileError’s message', () => {
    const bytes = exportConceptFile(record());
    const other: ConceptPackInfo = { ...PACK, id: 'sd15', hash: 'beef'.repeat(16) };
    const e = refusedWith(() => importConceptFile(bytes, other, opts));
    expect(e.cause).toBeInstanceOf(ConceptFileError);
    expect((e.cause as ConceptFileError).code).toBe('wrong-pack');
    expect(e.message).toContain('mug.safetensors');
    expect(e.message).toContain((e.cause as ConceptFileError).message);
    expect(e.message).toMatch(/made for the model pack "tiny-sd".*loaded pack is "sd15"/);
  });

  it('refuses the same pack hash with other shapes, and any import with no pack loaded', () => {
    const bytes = exportConceptFile(record());
    const narrower = { ...PACK, targets: PACK.targets.map((t) => ({ ...t, in: t.in + 1 })) };
    expect((refusedWith(() => importConceptFile(bytes, narrower, opts)).cause as ConceptFileError).code).toBe('shape');
    expect(refusedWith(() => importConceptFile(bytes, null, opts)).message).toMatch(/no pack is loaded/);
  });

  it('refuses what is not a concept, as the format does', () => {
    const e = refusedWith(() => importConceptFile(new TextEncoder().encode('hello'), PACK, opts));
    expect((e.cause as ConceptFileError).code).toBe('not-safetensors');
  });

  it('imports without the library keys: name from the file name, default settings, no thumbnail', () => {
    const bytes = withMetadata(exportConceptFile(record()), (m) => {
      for (const k of Object.values(RECORD_METADATA_KEYS)) delete m[k];
    });
    const { record: back, warnings } = importConceptFile(bytes, PACK, { ...opts, fileName: 'My_mug.safetensors' });
    expect(warnings).toEqual([]);
    expect(back.name).toBe('My_mug');
    expect(back.settings).toEqual(defaultSettings(record()));
    expect(back.settings.steps).toBe(3); // one per loss value
    expect(back.thumbnail).toEqual(new Uint8Array(0));
    expect(back.updatedAt).toBe(back.createdAt);
    expect(back.embedding).toEqual(record().embedding);
  });

  it('replaces each damaged library field by its default, keeps the rest, and says so', () => {
    const cases: [key: string, value: string, check: (r: ConceptRecord) => void, warning: RegExp][] = [
      ['name', ' \u0007 ', (r) => expect(r.name).toBe('mug'), /name is not usable/],
      ['name', 'x'.repeat(10_000), (r) => expect(r.name).toBe('mug'), /name is not usable/],
      ['settings', '{"steps": 12', (r) => expect(r.settings).toEqual(defaultSettings(record())), /not valid JSON/],
      ['settings', '[1, 2]', (r) => expect(r.settings.seed).toBe(0), /not a JSON object/],
      ['settings', '{"steps": 1, "steps": 2}', (r) => expect(r.settings.steps).toBe(3), /not valid JSON/],
      ['settings', `{"seed": 1, "pad": "${'x'.repeat(5000)}"}`, (r) => expect(r.settings.seed).toBe(0), /over 4096/],
      [
        'settings',
        '{"steps": -3, "seed": 9, "crop": {"x": 1, "y": "2", "size": 3}, "source": null, "generate": {"steps": 20, "guidance": 7, "sampler": "plms", "blend": 0.2, "batch": 1}}',
        (r) => expect(r.settings).toEqual({ steps: 3, seed: 9, crop: null, source: null, generate: null }),
        /unusable steps, crop, generate/,
      ],
      [
        'settings',
        '{"steps": 5, "seed": 1, "source": {"name": "a\\u0000b", "width": 4, "height": 4}, "future": [1]}',
        (r) => expect(r.settings).toEqual({ ...defaultSettings(record()), steps: 5, seed: 1 }),
        /unusable source/,
      ],
      ['thumbnail_png', 'not base64!', (r) => expect(r.thumbnail.length).toBe(0), /thumbnail is not valid base64/],
      [
        'thumbnail_png',
        btoa('GIF89a' + '\0'.repeat(30)),
        (r) => expect(r.thumbnail.length).toBe(0),
        /thumbnail is not a PNG/,
      ],
      [
        'thumbnail_png',
        Buffer.from(png(513, 4)).toString('base64'),
        (r) => expect(r.thumbnail.length).toBe(0),
        /513 × 4 pixels/,
      ],
      [
        'thumbnail_png',
        Buffer.from(THUMB.subarray(0, THUMB.length - 12)).toString('base64'), // IEND cut off
        (r) => expect(r.thumbnail.length).toBe(0),
        /damaged PNG/,
      ],
      [
        'thumbnail_png',
        'A'.repeat(Math.ceil(MAX_THUMBNAIL_BYTES / 3) * 4 + 4),
        (r) => expect(r.thumbnail.length).toBe(0),
        /over 262144 bytes/,
      ],
      ['updated_at', 'yesterday', (r) => expect(r.updatedAt).toBe(r.createdAt), /^$/],
      ['updated_at', '2001-01-01T00:00:00Z', (r) => expect(r.updatedAt).toBe(r.createdAt), /^$/],
    ];
    const good = exportConceptFile(record());
    for (const [key, value, check, warning] of cases) {
      const bytes = withMetadata(good, (m) => (m[key] = value));
      const { record: back, warnings } = importConceptFile(bytes, PACK, opts);
      check(back);
      expect(warnings.join('\n'), `${key} = ${value.slice(0, 40)}`).toMatch(warning);
      expect(warnings.length).toBe(warning.source === '^$' ? 0 : 1);
      // Everything else is kept.
      if (key !== 'name') expect(back.name).toBe('Grey mug');
      if (key !== 'thumbnail_png') expect(back.thumbnail).toEqual(THUMB);
      expect(back.placeholder).toBe('S*');
      expect(back.lora.map((l) => l.module)).toEqual(PACK.targets.map((t) => t.module));
    }
  });

  it('names files safely', () => {
    expect(conceptFileName({ name: 'My mug / v2 ☕' })).toBe('My-mug-v2.safetensors');
    expect(conceptFileName({ name: '../..' }, 'kohya')).toBe('concept.kohya.safetensors');
  });
});
