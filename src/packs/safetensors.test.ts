import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../engine/dtype.ts';
import { rng } from '../../test/random.ts';
import {
  dtypeSize,
  f32ToBf16Bits,
  parseSafetensors,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  SafetensorsError,
  writeSafetensors,
  type SafetensorsErrorCode,
  type SafetensorsFile,
} from './safetensors.ts';

const REF = new URL('../../../shared/data/reference/', import.meta.url);
const read = (rel: string) => new Uint8Array(readFileSync(new URL(rel, REF)));
const json = (rel: string) => JSON.parse(readFileSync(new URL(rel, REF), 'utf8'));
const paramCount = (f: SafetensorsFile) => f.tensors.reduce((s, t) => s + t.numel, 0);

/** Builds a file by hand: header text as given, `dataBytes` bytes of data, optional length-field override. */
function raw(header: string, dataBytes: number, lengthField?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthField ?? h.length), true);
  out.set(h, 8);
  return out;
}

function refusal(bytes: Uint8Array, options?: { maxHeaderBytes?: number }): SafetensorsError {
  try {
    parseSafetensors(bytes, options);
  } catch (e) {
    if (e instanceof SafetensorsError) return e;
    throw e;
  }
  throw new Error('expected the file to be refused');
}

function expectRefused(bytes: Uint8Array, code: SafetensorsErrorCode, messagePart: string | RegExp, tensor?: string) {
  const e = refusal(bytes);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(messagePart);
  if (tensor !== undefined) expect(e.tensor).toBe(tensor);
}

describe('safetensors: real files written by Python safetensors 0.8.0', () => {
  const unetCfg = json('tiny-sd/unet/config.json');
  const textCfg = json('tiny-sd/text_encoder/config.json');

  it('reads the tiny UNet: count, parameters, config-derived shapes and values', () => {
    const f = parseSafetensors(read('tiny-sd/unet/diffusion_pytorch_model.safetensors'));
    expect(f.tensors.length).toBe(208);
    expect(paramCount(f)).toBe(792_964);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.every((t) => t.dtype === 'F32')).toBe(true);
    const [c0] = unetCfg.block_out_channels;
    const cLast = unetCfg.block_out_channels.at(-1);
    const shapes: Record<string, number[]> = {
      'conv_in.weight': [c0, unetCfg.in_channels, unetCfg.conv_in_kernel, unetCfg.conv_in_kernel],
      'conv_out.weight': [unetCfg.out_channels, c0, unetCfg.conv_out_kernel, unetCfg.conv_out_kernel],
      'time_embedding.linear_1.weight': [4 * c0, c0],
      'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight': [c0, unetCfg.cross_attention_dim],
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias': [c0],
      'mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight': [8 * cLast, cLast], // GEGLU: two halves of 4C
      'up_blocks.1.attentions.0.proj_in.weight': [c0, c0, 1, 1], // use_linear_projection false → 1×1 conv
    };
    for (const [name, shape] of Object.entries(shapes)) expect(f.info(name).shape, name).toEqual(shape);
    // Values read with Python's struct from the same bytes.
    expect(Array.from(f.float32('conv_in.bias').subarray(0, 4))).toEqual([
      -0.14009445905685425, 0.0024561486206948757, 0.1313314139842987, -0.14273260533809662,
    ]);
    expect(f.float32('conv_in.bias')[31]).toBe(-0.16223493218421936);
    const ff = f.float32('mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight');
    expect(ff.length).toBe(512 * 64);
    expect(ff[0]).toBe(0.09826844930648804);
    expect(ff[ff.length - 1]).toBe(0.08200441300868988);
    expect(f.info('time_embedding.linear_1.weight').dataOffsets).toEqual([1503248, 1519632]);
    expect(f.float32('time_embedding.linear_1.weight')[3]).toBe(0.13775737583637238);
  });

  it('every tiny-UNet / text / vision name is a real SD 1.5 / CLIP name (keys/)', () => {
    const names = (rel: string) => new Set<string>(json(rel).keys.map((k: { name: string }) => k.name));
    for (const [file, keys] of [
      ['tiny-sd/unet/diffusion_pytorch_model.safetensors', 'keys/sd15-unet.keys.json'],
      ['tiny-sd/text_encoder/model.safetensors', 'keys/clip-vit-large-patch14-text.keys.json'],
      ['tiny-sd/image_encoder/model.safetensors', 'keys/clip-vit-large-patch14-vision-with-projection.keys.json'],
    ]) {
      const known = names(keys);
      const f = parseSafetensors(read(file));
      expect(
        f.names().filter((n) => !known.has(n)),
        file,
      ).toEqual([]);
    }
  });

  it('reads the tiny text encoder, VAE and image encoder', () => {
    const te = parseSafetensors(read('tiny-sd/text_encoder/model.safetensors'));
    expect(te.tensors.length).toBe(36);
    expect(paramCount(te)).toBe(1_600_672);
    expect(te.info('text_model.embeddings.token_embedding.weight').shape).toEqual([
      textCfg.vocab_size,
      textCfg.hidden_size,
    ]);
    expect(te.info('text_model.embeddings.position_embedding.weight').shape).toEqual([
      textCfg.max_position_embeddings,
      textCfg.hidden_size,
    ]);
    const last = textCfg.num_hidden_layers - 1;
    expect(te.info(`text_model.encoder.layers.${last}.mlp.fc1.weight`).shape).toEqual([
      textCfg.intermediate_size,
      textCfg.hidden_size,
    ]);
    expect(te.byName.has(`text_model.encoder.layers.${last + 1}.mlp.fc1.weight`)).toBe(false);
    const emb = te.float32('text_model.embeddings.token_embedding.weight');
    expect(Array.from(emb.subarray(2368 * 32, 2368 * 32 + 3))).toEqual([
      0.02627691440284252, -0.016368456184864044, 0.0031135159078985453,
    ]);
    expect(Array.from(te.float32('text_model.final_layer_norm.weight'))).toEqual(new Array(32).fill(1));

    const vae = parseSafetensors(read('tiny-sd/vae/diffusion_pytorch_model.safetensors'));
    expect([vae.tensors.length, paramCount(vae)]).toEqual([124, 167_959]);
    const ie = parseSafetensors(read('tiny-sd/image_encoder/model.safetensors'));
    expect([ie.tensors.length, paramCount(ie)]).toEqual([40, 24_960]);
    expect(ie.info('vision_model.embeddings.position_embedding.weight').shape).toEqual([(32 / 8) ** 2 + 1, 32]);
  });

  it('reads the LoRA goldens with their PEFT metadata', () => {
    const f = parseSafetensors(read('tiny-sd/lora-goldens.safetensors'));
    expect(f.tensors.length).toBe(64);
    expect(paramCount(f)).toBe(9984);
    const peft = JSON.parse(f.metadata.lora_adapter_metadata);
    expect([peft['unet.r'], peft['unet.lora_alpha']]).toEqual([4, 4]);
    expect(f.metadata.format).toBe('pt');
    const a = 'unet.up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v.lora_A.weight';
    expect(f.info(a).shape).toEqual([4, 32]);
    expect(Array.from(f.float32(a).subarray(0, 3))).toEqual([
      0.01796620525419712, -0.1524907648563385, -0.1846868246793747,
    ]);
    const b = 'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_B.weight';
    expect(f.info(b).shape).toEqual([64, 4]);
    expect(Array.from(f.float32(b).subarray(0, 3))).toEqual([
      0.004490091931074858, -0.04270639643073082, -0.10976697504520416,
    ]);
    for (const t of f.tensors) {
      if (t.name.endsWith('lora_A.weight')) expect(t.shape[0]).toBe(4);
      else expect(t.shape[1]).toBe(4);
    }
  });

  it('rewrites every real file byte for byte (writer order, JSON and padding match Python)', () => {
    for (const file of [
      'tiny-sd/unet/diffusion_pytorch_model.safetensors',
      'tiny-sd/text_encoder/model.safetensors',
      'tiny-sd/vae/diffusion_pytorch_model.safetensors',
      'tiny-sd/image_encoder/model.safetensors',
      'tiny-sd/lora-goldens.safetensors',
    ]) {
      const bytes = read(file);
      const f = parseSafetensors(bytes);
      // Shuffled input order: the writer must sort on its own.
      const inputs = f
        .names()
        .reverse()
        .map((name) => ({ name, dtype: f.info(name).dtype, shape: f.info(name).shape, data: f.rawBytes(name) }));
      const out = writeSafetensors(inputs, f.hasMetadata ? { ...f.metadata } : undefined);
      expect(out.length, file).toBe(bytes.length);
      expect(Buffer.compare(Buffer.from(out), Buffer.from(bytes)), file).toBe(0);
    }
  });

  it('header-only parse from a prefix gives the absolute data offsets (for ONNX external data)', () => {
    const bytes = read('tiny-sd/unet/diffusion_pytorch_model.safetensors');
    const need = safetensorsHeaderSize(bytes.subarray(0, 8));
    expect(need).toBe(8 + 23088);
    try {
      parseSafetensorsHeader(bytes.subarray(0, 100));
      throw new Error('should need more bytes');
    } catch (e) {
      expect(e).toBeInstanceOf(SafetensorsError);
      expect((e as SafetensorsError).code).toBe('need-more-bytes');
      expect((e as SafetensorsError).bytesNeeded).toBe(need);
    }
    const h = parseSafetensorsHeader(bytes.subarray(0, need));
    expect(h.dataOffset).toBe(need);
    expect(h.fileSize).toBe(bytes.length);
    const t = h.byName.get('conv_in.bias')!;
    expect(t.fileOffset).toBe(need);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + t.fileOffset, 4);
    expect(dv.getFloat32(0, true)).toBe(-0.14009445905685425);
    // With the file size the coverage is checked too.
    expect(() => parseSafetensorsHeader(bytes.subarray(0, need), { fileSize: bytes.length + 4 })).toThrow(/cover only/);
  });
});

describe('safetensors: writer', () => {
  it('round-trips F32/F16/BF16 with sorting by dtype alignment then name, metadata first, 8-aligned data', () => {
    const r = rng(5);
    const a = r.normals(6);
    const b = r.normals(5, 100);
    const c = r.normals(7, 1e-3);
    const bytes = writeSafetensors(
      [
        { name: 'z.f32', dtype: 'F32', shape: [2, 3], data: a },
        { name: 'y.f16', dtype: 'F16', shape: [5], data: b },
        { name: 'b.bf16', dtype: 'BF16', shape: [7, 1], data: c },
        { name: 'a.f32', dtype: 'F32', shape: [], data: new Float32Array([3.5]) },
        { name: 'empty', dtype: 'F16', shape: [0, 4], data: new Float32Array(0) },
      ],
      { zeta: 'last', alpha: 'first' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).toMatch(/^\{"__metadata__":\{"alpha":"first","zeta":"last"\},"a\.f32":/);
    expect(text.trimEnd().length).toBeGreaterThan(n - 8);
    const f = parseSafetensors(bytes);
    expect(f.names()).toEqual(['a.f32', 'z.f32', 'b.bf16', 'empty', 'y.f16']);
    expect(f.info('z.f32').dataOffsets).toEqual([4, 28]);
    for (const t of f.tensors) expect(t.fileOffset % dtypeSize(t.dtype)).toBe(0);
    expect(f.float32('z.f32')).toEqual(a);
    expect(f.float32('a.f32')).toEqual(new Float32Array([3.5]));
    expect(f.float32('y.f16')).toEqual(roundToF16(b));
    expect(f.float32('empty').length).toBe(0);
    const bf = f.float32('b.bf16');
    for (let i = 0; i < c.length; i++) expect(bf[i]).toBe(bf16Reference(c[i]));
  });

  it('rounds to bfloat16 to nearest even, keeps NaN, ±Inf, ±0 and overflows to Inf', () => {
    const cases = [
      0,
      -0,
      1,
      -1,
      Infinity,
      -Infinity,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -9,
      3.4028234663852886e38,
      1e-40,
      Math.PI,
    ];
    for (const v of cases) {
      const got = bf16ToNumber(f32ToBf16Bits(v));
      expect(Object.is(got, bf16Reference(v)), `${v}: got ${got}, want ${bf16Reference(v)}`).toBe(true);
    }
    expect(Number.isNaN(bf16ToNumber(f32ToBf16Bits(NaN)))).toBe(true);
    const r = rng(9);
    for (let i = 0; i < 2000; i++) {
      const v = Math.fround(r.normal() * 10 ** r.int(-30, 30));
      expect(bf16ToNumber(f32ToBf16Bits(v))).toBe(bf16Reference(v));
    }
  });

  it('refuses bad input', () => {
    const t = { name: 'x', dtype: 'F32' as const, shape: [2], data: new Float32Array(2) };
    expect(() => writeSafetensors([t, t])).toThrow(/duplicate tensor name "x"/);
    expect(() => writeSafetensors([{ ...t, shape: [3] }])).toThrow(/needs 3 elements/);
    expect(() => writeSafetensors([{ ...t, name: '__metadata__' }])).toThrow(SafetensorsError);
    expect(() => writeSafetensors([{ ...t, dtype: 'I32', data: new Float32Array(2) }])).toThrow(/raw bytes/);
    expect(() => writeSafetensors([t], { k: 5 as unknown as string })).toThrow(/must be a string/);
    // Raw bytes for any dtype.
    const i64 = writeSafetensors([{ name: 'ids', dtype: 'I64', shape: [2], data: new Uint8Array(16).fill(1) }]);
    expect(parseSafetensors(i64).rawBytes('ids')).toEqual(new Uint8Array(16).fill(1));
    expect(() => parseSafetensors(i64).float32('ids')).toThrow(/not a float type/);
  });
});

describe('safetensors: validation', () => {
  const T = (dtype: string, shape: unknown, offsets: unknown) =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });

  it('accepts empty files, scalars and zero-size tensors', () => {
    expect(parseSafetensors(raw('{}', 0)).tensors).toEqual([]);
    const f = parseSafetensors(
      raw(`{"e":${T('F32', [0], [0, 0])},"s":${T('F32', [], [0, 4])},"e2":${T('F16', [3, 0], [4, 4])}}`, 4),
    );
    expect(f.names()).toEqual(['e', 's', 'e2']);
    expect(f.info('s').numel).toBe(1);
  });

  it('refuses a file shorter than the length field', () => {
    expectRefused(new Uint8Array(5), 'too-short', /fewer than the 8-byte/);
  });

  it('refuses a header length beyond the file or over the cap', () => {
    expectRefused(raw('{}', 0, 100), 'header-beyond-file', /100 bytes but the file has only 2/);
    expectRefused(raw('{}', 0, 2 ** 40), 'header-too-large', /1099511627776 bytes, over the 104857600-byte limit/);
    const ok = raw('{"__metadata__":{"a":"b"}}', 0);
    expect(refusal(ok, { maxHeaderBytes: 16 }).code).toBe('header-too-large');
    expect(parseSafetensors(ok, { maxHeaderBytes: 64 }).metadata.a).toBe('b');
    expect(() => parseSafetensors(ok, { maxHeaderBytes: 2 ** 30 })).toThrow(RangeError);
  });

  it('refuses headers that are not UTF-8 JSON objects', () => {
    const bad = raw('{"a":1}', 0);
    bad[10] = 0xff;
    expectRefused(bad, 'header-encoding', /UTF-8/);
    expectRefused(raw('{"a":', 0), 'header-json', /not valid JSON/);
    expectRefused(raw('[1,2]', 0), 'header-json', /starting with '\{'/);
    expectRefused(raw(' {}', 0), 'header-json', /starting with '\{'/);
    expectRefused(raw('', 0), 'header-json', /starting with '\{'/);
    expectRefused(raw('{}x', 0), 'header-json', /after the value/);
    expectRefused(raw('{"a":{"b":{"c":{"d":[[[]]]}}}}', 0), 'header-json', /nested deeper/);
  });

  it('refuses duplicate keys, naming them', () => {
    expectRefused(
      raw(`{"w":${T('F32', [1], [0, 4])},"w":${T('F32', [1], [4, 8])}}`, 8),
      'header-json',
      /duplicate key "w"/,
    );
    expectRefused(
      raw(`{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, 4),
      'header-json',
      /duplicate key "dtype"/,
    );
  });

  it('refuses metadata that is not a string map', () => {
    expectRefused(raw('{"__metadata__":{"a":1}}', 0), 'metadata', /value of "a" must be a string, got a number/);
    expectRefused(raw('{"__metadata__":"x"}', 0), 'metadata', /must be an object/);
  });

  it('refuses bad tensor entries, naming the tensor', () => {
    expectRefused(raw(`{"w":${T('F33', [1], [0, 4])}}`, 4), 'dtype', /tensor "w": unknown dtype "F33"/, 'w');
    expectRefused(
      raw(`{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}`, 4),
      'dtype',
      /tensor "w": dtype must be a string/,
      'w',
    );
    expectRefused(
      raw(`{"w":${T('F32', [-1], [0, 4])}}`, 4),
      'shape',
      /tensor "w": shape must be an array of non-negative integers, got \[-1\]/,
      'w',
    );
    expectRefused(raw(`{"w":${T('F32', [1.5], [0, 4])}}`, 4), 'shape', /tensor "w"/, 'w');
    expectRefused(raw(`{"w":${T('F32', ['1'], [0, 4])}}`, 4), 'shape', /tensor "w"/, 'w');
    expectRefused(raw(`{"w":${T('F32', 4, [0, 4])}}`, 4), 'shape', /tensor "w"/, 'w');
    expectRefused(raw(`{"w":${T('F32', [2 ** 40, 2 ** 40], [0, 4])}}`, 4), 'shape', /too many elements/, 'w');
    expectRefused(
      raw(`{"w":${T('F32', [1], [0])}}`, 4),
      'offsets',
      /tensor "w": data_offsets must be \[begin, end\]/,
      'w',
    );
    expectRefused(raw(`{"w":${T('F32', [1], [0, '4'])}}`, 4), 'offsets', /tensor "w"/, 'w');
    expectRefused(
      raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,9007199254740993]}}', 4),
      'offsets',
      /tensor "w"/,
      'w',
    ); // past 2^53
    expectRefused(raw(`{"w":${T('F32', [0], [4, 0])}}`, 4), 'offsets', /end before begin/, 'w');
    expectRefused(raw(`{"w":{"dtype":"F32","shape":[1]}}`, 4), 'offsets', /tensor "w"/, 'w');
    expectRefused(
      raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4),
      'tensor-info',
      /unknown field "x"/,
      'w',
    );
    expectRefused(raw(`{"w":[1]}`, 4), 'tensor-info', /tensor "w": entry must be an object/, 'w');
  });

  it('refuses a byte span that does not match shape·dtype', () => {
    expectRefused(
      raw(`{"w":${T('F16', [3], [0, 8])}}`, 8),
      'size-mismatch',
      /tensor "w": data_offsets \[0, 8\] span 8 bytes but F16 \[3\] needs 6/,
      'w',
    );
  });

  it('refuses offsets outside the data region', () => {
    expectRefused(
      raw(`{"w":${T('F32', [2], [0, 8])}}`, 4),
      'out-of-bounds',
      /tensor "w": .* end past the data region \(4 bytes\)/,
      'w',
    );
  });

  it('refuses overlapping tensors, naming both', () => {
    expectRefused(
      raw(`{"a":${T('F32', [2], [0, 8])},"b":${T('F32', [1], [4, 8])}}`, 8),
      'overlap',
      /tensor "b" \[4, 8\] overlaps tensor "a"/,
      'b',
    );
    expectRefused(raw(`{"a":${T('F32', [2], [0, 8])},"b":${T('F32', [2], [0, 8])}}`, 8), 'overlap', /overlaps/);
    // A zero-size tensor inside another one's bytes is an overlap too.
    expectRefused(raw(`{"a":${T('F32', [2], [0, 8])},"e":${T('F32', [0], [4, 4])}}`, 8), 'overlap', /tensor "e"/, 'e');
  });

  it('refuses holes: data region not fully covered (spec: no polyglot files)', () => {
    expectRefused(
      raw(`{"a":${T('F32', [1], [0, 4])},"b":${T('F32', [1], [8, 12])}}`, 12),
      'hole',
      /bytes \[4, 8\) .* before tensor "b"/,
      'b',
    );
    expectRefused(raw(`{"a":${T('F32', [1], [4, 8])}}`, 8), 'hole', /bytes \[0, 4\)/, 'a');
    expectRefused(raw(`{"a":${T('F32', [1], [0, 4])}}`, 9), 'hole', /has 9 bytes but the tensors cover only 4/);
    expectRefused(raw('{}', 3), 'hole', /has 3 bytes but the tensors cover only 0/);
  });

  it('mutation test: corrupted copies are refused with SafetensorsError or parse self-consistently', () => {
    const r = rng(2024);
    const base = writeSafetensors(
      [
        { name: 'w', dtype: 'F32', shape: [3, 2], data: r.normals(6) },
        { name: 'h', dtype: 'F16', shape: [5], data: r.normals(5) },
        { name: 'b', dtype: 'BF16', shape: [2, 2], data: r.normals(4) },
        { name: 'z', dtype: 'F32', shape: [0], data: new Float32Array(0) },
      ],
      { format: 'pt', note: 'mutation' },
    );
    const headerEnd = safetensorsHeaderSize(base);
    let refused = 0;
    let accepted = 0;
    const t0 = performance.now();
    for (let i = 0; i < 600; i++) {
      const bytes = base.slice();
      let input = bytes;
      const kind = i % 4;
      if (kind === 0) {
        // 1–3 random bytes of the header set to random values.
        for (let k = r.int(1, 3); k > 0; k--) bytes[r.int(8, headerEnd - 1)] = r.int(0, 255);
      } else if (kind === 1) {
        // Structural characters swapped for others that keep it "almost" JSON.
        const alphabet = '{}[],:"0123456789 -.e\\';
        for (let k = r.int(1, 2); k > 0; k--)
          bytes[r.int(8, headerEnd - 1)] = alphabet.charCodeAt(r.int(0, alphabet.length - 1));
      } else if (kind === 2) {
        input = bytes.subarray(0, r.int(0, bytes.length - 1));
      } else {
        const dv = new DataView(bytes.buffer);
        const choice = r.int(0, 3);
        if (choice === 0) dv.setUint32(0, headerEnd - 8 + r.int(-12, 12), true);
        else if (choice === 1) bytes[r.int(0, 7)] ^= 1 << r.int(0, 7);
        else if (choice === 2) dv.setUint32(0, r.int(0, 0xffffffff), true);
        else dv.setUint32(4, r.int(1, 0xffffffff), true);
      }
      let f: SafetensorsFile;
      try {
        f = parseSafetensors(input);
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`mutation ${i} threw ${String(e)}`, { cause: e });
        refused++;
        continue;
      }
      accepted++;
      // Self-consistent: tensors tile the data region exactly and every accessor works.
      let covered = 0;
      for (const t of [...f.tensors].sort(
        (x, y) => x.dataOffsets[0] - y.dataOffsets[0] || x.dataOffsets[1] - y.dataOffsets[1],
      )) {
        expect(t.dataOffsets[0]).toBe(covered);
        expect(t.byteLength).toBe(t.numel * dtypeSize(t.dtype));
        covered = t.dataOffsets[1];
        expect(f.rawBytes(t.name).length).toBe(t.byteLength);
        if (['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) expect(f.float32(t.name).length).toBe(t.numel);
      }
      expect(f.dataOffset + covered).toBe(input.length);
    }
    expect(refused + accepted).toBe(600);
    expect(refused).toBeGreaterThan(300);
    expect(accepted).toBeGreaterThan(0); // e.g. a flipped byte inside a metadata string
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

function bf16ToNumber(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/** bfloat16 rounding by value (not by bit tricks): nearest of the two neighbours, ties to the even mantissa. */
function bf16Reference(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const f = Math.fround(v);
  const bits = new Uint32Array(new Float32Array([f]).buffer)[0];
  const down = bits & 0xffff0000;
  const lo = new Float32Array(new Uint32Array([down]).buffer)[0];
  const hi = new Float32Array(new Uint32Array([down + 0x10000]).buffer)[0]; // may be ±Inf
  const dLo = Math.abs(f - lo);
  // Past the largest finite bfloat16 the next step up would be 2^128, which rounds to ±Inf.
  const dHi = Math.abs((Number.isFinite(hi) ? hi : Math.sign(f) * 2 ** 128) - f);
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return ((down >>> 16) & 1) === 0 ? lo : hi;
}
