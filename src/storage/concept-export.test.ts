import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { loraTargets } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig, type UNetConfig } from '../models/unet/unet-config.ts';
import { decodeFloat32, parseSafetensors } from '../packs/safetensors.ts';
import type { ConceptData } from '../domain/types.ts';
import {
  A1111_EMBEDDING_KEY,
  bundleZip,
  DIFFUSERS_EMBEDDING_FILE,
  DIFFUSERS_LORA_FILE,
  exportForA1111,
  exportForDiffusers,
  README_FILE,
  TRIGGER_METADATA_KEY,
} from './concept-export.ts';
import { writeZip } from './zip.ts';

// The diffusers file of the same adapter layout, written by save_lora_weights itself.
const REF = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);
const golden = parseSafetensors(new Uint8Array(readFileSync(new URL('lora-goldens.safetensors', REF))));
const unetConfig = JSON.parse(readFileSync(new URL('unet/config.json', REF), 'utf8')) as UNetConfig;
const targets = loraTargets(resolveUNetConfig(unetConfig));

function makeConcept(placeholder = 'S*', vectors = 1): ConceptData {
  const g = rng(3);
  return {
    placeholder,
    embedding: g.normals(32 * vectors, 0.02),
    nearestWords: ['cat'],
    hardTokenId: 2368,
    rank: 4,
    alpha: 4,
    blend: 0.25,
    lora: targets.map((t) => ({
      module: t.module,
      A: g.normals(4 * t.in, 0.1),
      aShape: [4, t.in] as [number, number],
      B: g.normals(t.out * 4, 0.01),
      bShape: [t.out, 4] as [number, number],
    })),
    lossCurve: [],
    packId: 'tiny-sd',
    packHash: 'a'.repeat(64),
  };
}

const file = (files: { name: string; bytes: Uint8Array }[], name: string) => {
  const f = files.find((x) => x.name === name);
  if (!f) throw new Error(`no ${name} in ${files.map((x) => x.name).join(', ')}`);
  return f.bytes;
};
const names = (bytes: Uint8Array) =>
  parseSafetensors(bytes)
    .tensors.map((t) => t.name)
    .sort();

describe('diffusers export', () => {
  const c = makeConcept();
  const b = exportForDiffusers(c, { name: 'My cat' });

  it('is the folder load_lora_weights(folder) and load_textual_inversion(folder) read', () => {
    expect(b.files.map((f) => f.name).sort()).toEqual(
      [README_FILE, DIFFUSERS_EMBEDDING_FILE, DIFFUSERS_LORA_FILE].sort(),
    );
    expect(DIFFUSERS_LORA_FILE).toBe('pytorch_lora_weights.safetensors');
    expect(DIFFUSERS_EMBEDDING_FILE).toBe('learned_embeds.safetensors');
  });

  it('the LoRA has exactly the keys, shapes and metadata save_lora_weights writes', () => {
    const f = parseSafetensors(file(b.files, DIFFUSERS_LORA_FILE));
    expect(f.tensors.map((t) => t.name).sort()).toEqual(golden.tensors.map((t) => t.name).sort());
    for (const t of golden.tensors) expect(f.tensors.find((x) => x.name === t.name)!.shape).toEqual(t.shape);
    // load_lora_weights refuses files with a key lacking "lora" (is_correct_format).
    expect(f.tensors.every((t) => t.name.includes('lora'))).toBe(true);
    expect(f.metadata.format).toBe(golden.metadata.format);
    const mine = JSON.parse(f.metadata.lora_adapter_metadata) as Record<string, unknown>;
    const theirs = JSON.parse(golden.metadata.lora_adapter_metadata) as Record<string, unknown>;
    for (const k of ['unet.r', 'unet.lora_alpha', 'unet.peft_type', 'unet.bias', 'unet.use_dora'])
      expect(mine[k]).toEqual(theirs[k]);
    // Every key is one LoraConfig accepts (diffusers calls LoraConfig(**config) on them).
    for (const k of Object.keys(mine)) expect(Object.keys(theirs)).toContain(k);
    const A = f.tensors.find((t) => t.name === `unet.${c.lora[0].module}.lora_A.weight`)!;
    expect(decodeFloat32(A.dtype, f.rawBytes(A.name))).toEqual(c.lora[0].A);
  });

  it('the embedding file holds one key, the placeholder, with the vectors', () => {
    const f = parseSafetensors(file(b.files, DIFFUSERS_EMBEDDING_FILE));
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual([['S*', [1, 32]]]);
    expect(decodeFloat32('F32', f.rawBytes('S*'))).toEqual(c.embedding);
    const multi = exportForDiffusers(makeConcept('sks', 3), { name: 'x' });
    expect(parseSafetensors(file(multi.files, DIFFUSERS_EMBEDDING_FILE)).tensors[0].shape).toEqual([3, 32]);
  });

  it('README says how to load it and that other tools use blend 1', () => {
    const text = new TextDecoder().decode(file(b.files, README_FILE));
    expect(text).toContain(`pipe.load_lora_weights("${b.folder}")`);
    expect(text).toContain(`pipe.load_textual_inversion("${b.folder}")`);
    expect(text).toMatch(/blend 1/);
  });
});

describe('A1111 / ComfyUI export', () => {
  const c = makeConcept();
  const b = exportForA1111(c, { name: 'My cat' });

  it('splits a kohya LoRA with only lora_unet_ keys from a one-tensor emb_params embedding', () => {
    expect(b.trigger).toBe('My-cat'); // "S*" is not a file name; the embedding is named after its file
    expect(b.files.map((f) => f.name).sort()).toEqual(
      ['My-cat-lora.safetensors', 'My-cat.safetensors', README_FILE].sort(),
    );
    const lora = parseSafetensors(file(b.files, 'My-cat-lora.safetensors'));
    // kohya names from diffusers paths: "lora_unet_" + path with '.' → '_' (what diffusers'
    // _convert_non_diffusers_lora_to_diffusers and A1111 map back).
    const want = golden.tensors
      .filter((t) => t.name.endsWith('.lora_A.weight'))
      .flatMap((t) => {
        const m = `lora_unet_${t.name.slice('unet.'.length, -'.lora_A.weight'.length).replaceAll('.', '_')}`;
        return [`${m}.lora_down.weight`, `${m}.lora_up.weight`, `${m}.alpha`];
      })
      .sort();
    expect(names(file(b.files, 'My-cat-lora.safetensors'))).toEqual(want);
    // diffusers treats a file as kohya only when every key starts lora_unet_/lora_te_.
    expect(lora.tensors.every((t) => /^lora_(unet|te)_/.test(t.name))).toBe(true);
    const alpha = lora.tensors.find((t) => t.name.endsWith('.alpha'))!;
    expect(alpha.shape).toEqual([]);
    expect(decodeFloat32(alpha.dtype, lora.rawBytes(alpha.name))[0]).toBe(4);
    expect(lora.metadata[TRIGGER_METADATA_KEY]).toBe('My-cat');

    const emb = parseSafetensors(file(b.files, 'My-cat.safetensors'));
    expect(emb.tensors.map((t) => [t.name, t.shape])).toEqual([[A1111_EMBEDDING_KEY, [1, 32]]]);
    expect(emb.metadata[TRIGGER_METADATA_KEY]).toBe('My-cat');
  });

  it('uses the placeholder as the trigger when it is a safe file name', () => {
    const s = exportForA1111(makeConcept('sks'), { name: 'My cat' });
    expect(s.trigger).toBe('sks');
    expect(s.files.map((f) => f.name)).toContain('sks.safetensors');
    const text = new TextDecoder().decode(file(s.files, README_FILE));
    expect(text).toContain('<lora:My-cat-lora:1> a photo of sks');
    expect(text).toContain('embedding:sks');
  });
});

describe('zip', () => {
  // An independent reader of the bytes: local headers, central directory, end record.
  function readZip(z: Uint8Array): { name: string; bytes: Uint8Array }[] {
    const dv = new DataView(z.buffer, z.byteOffset, z.byteLength);
    const eocd = z.length - 22;
    expect(dv.getUint32(eocd, true)).toBe(0x06054b50);
    const count = dv.getUint16(eocd + 10, true);
    let cd = dv.getUint32(eocd + 16, true);
    expect(cd + dv.getUint32(eocd + 12, true)).toBe(eocd);
    const out = [];
    for (let i = 0; i < count; i++) {
      expect(dv.getUint32(cd, true)).toBe(0x02014b50);
      const crc = dv.getUint32(cd + 16, true);
      const size = dv.getUint32(cd + 24, true);
      const nameLen = dv.getUint16(cd + 28, true);
      const local = dv.getUint32(cd + 42, true);
      const name = new TextDecoder().decode(z.subarray(cd + 46, cd + 46 + nameLen));
      expect(dv.getUint32(local, true)).toBe(0x04034b50);
      expect(dv.getUint16(local + 8, true)).toBe(0); // stored
      const data = z.subarray(local + 30 + nameLen, local + 30 + nameLen + size);
      expect(zlibCrc32(data)).toBe(crc);
      expect(dv.getUint32(local + 14, true)).toBe(crc);
      out.push({ name, bytes: data });
      cd += 46 + nameLen;
    }
    return out;
  }

  it('stores every file of a bundle in its folder, CRC-32 checked', () => {
    const b = exportForDiffusers(makeConcept(), { name: 'My cat' });
    const entries = readZip(bundleZip(b, new Date('2026-01-02T03:04:06Z')));
    expect(entries.map((e) => e.name)).toEqual(b.files.map((f) => `${b.folder}/${f.name}`));
    entries.forEach((e, i) => expect(e.bytes).toEqual(b.files[i].bytes));
  });

  it('refuses unsafe or repeated names', () => {
    const bytes = new Uint8Array(1);
    expect(() => writeZip([{ name: '../x', bytes }])).toThrow(/safe/);
    expect(() => writeZip([{ name: '/x', bytes }])).toThrow(/safe/);
    expect(() =>
      writeZip([
        { name: 'a', bytes },
        { name: 'a', bytes },
      ]),
    ).toThrow(/twice/);
  });
});
