// The streaming pack builder end to end on tiny-sd: diffusers folder and single-file (LDM)
// sources give exactly tiny-sd's tensors; dtypes, EMA, SD 2's OpenCLIP layout and VAE
// overrides convert value for value; bad inputs fail before any weight is written; an
// interrupted build leaves nothing that looks like a pack.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../engine/dtype.ts';
import { buildPack, type BuildPackOptions } from './build-pack.ts';
import { diffusersToLdmName, emaName } from './ldm-convert.ts';
import { ClipTokenizer } from '../pipeline/clip-tokenizer.ts';
import { BUNDLED_MERGES, buildPackFromPaths } from './pack-build-node.ts';
import { nodeFolder, openNodeSource } from './pack-io-node.ts';
import {
  blobFolder,
  blobSource,
  memoryPackSink,
  memorySource,
  type BuildProgress,
  type SourceFolder,
} from './pack-io.ts';
import {
  parseSafetensors,
  planSafetensorsLayout,
  writeSafetensors,
  type SafetensorsFile,
  type SafetensorsTensorInput,
} from './safetensors.ts';
import { convertFloats } from './tensor-stream.ts';

const REF = new URL('../../../shared/data/reference/', import.meta.url);
const TINY = new URL('tiny-sd/', REF).pathname;
const TINY_LDM = new URL('single-file/tiny-sd.ldm.safetensors', REF).pathname;
const tinyFile = (p: string) => parseSafetensors(new Uint8Array(readFileSync(join(TINY, p))));
const TINY_WEIGHTS = {
  text_encoder: tinyFile('text_encoder/model.safetensors'),
  unet: tinyFile('unet/diffusion_pytorch_model.safetensors'),
  vae: tinyFile('vae/diffusion_pytorch_model.safetensors'),
};
const PACK_PATHS = {
  text_encoder: 'text_encoder/model.safetensors',
  unet: 'unet/diffusion_pytorch_model.safetensors',
  vae: 'vae/diffusion_pytorch_model.safetensors',
};
const ldm = parseSafetensors(new Uint8Array(readFileSync(TINY_LDM)));
const tinyConfig = (c: string) => JSON.parse(readFileSync(join(TINY, c, 'config.json'), 'utf8'));
const LDM_CFG = {
  unet: tinyConfig('unet'),
  vae: tinyConfig('vae'),
  textLayers: tinyConfig('text_encoder').num_hidden_layers,
};

/** Every tensor of `got` equals `want`'s (names, dtype, shape, bytes), or as `map` says. */
function expectSameTensors(got: SafetensorsFile, want: SafetensorsFile, what: string) {
  expect(got.names().sort(), what).toEqual(want.names().sort());
  for (const n of want.names()) {
    expect(got.info(n).shape, `${what} ${n}`).toEqual(want.info(n).shape);
    expect(got.info(n).dtype, `${what} ${n}`).toBe(want.info(n).dtype);
    expect(Buffer.compare(got.rawBytes(n), want.rawBytes(n)), `${what} ${n} bytes`).toBe(0);
  }
}

/** A single file in memory: tiny-sd.ldm's tensors, transformed. */
function ldmVariant(
  edit: (name: string, t: SafetensorsTensorInput) => SafetensorsTensorInput | SafetensorsTensorInput[] | null,
  extra: SafetensorsTensorInput[] = [],
): Uint8Array {
  const out: SafetensorsTensorInput[] = [];
  for (const name of ldm.names()) {
    const info = ldm.info(name);
    const r = edit(name, { name, dtype: info.dtype, shape: info.shape, data: ldm.rawBytes(name) });
    if (r) out.push(...(Array.isArray(r) ? r : [r]));
  }
  return writeSafetensors([...out, ...extra], { format: 'pt' });
}

const base = (over: Partial<BuildPackOptions> & Pick<BuildPackOptions, 'source'>): BuildPackOptions => ({
  sink: memoryPackSink(),
  name: 'test',
  imageEncoder: nodeFolder(join(TINY, 'image_encoder')),
  ...over,
});

async function buildInMemory(o: BuildPackOptions) {
  const sink = memoryPackSink();
  const manifest = await buildPack({ ...o, sink });
  const file = (c: keyof typeof PACK_PATHS) => parseSafetensors(sink.files!.get(PACK_PATHS[c])!);
  return { manifest, sink, file };
}

describe('likeness pack: streaming builder', () => {
  it('a diffusers folder gives byte-identical weights files, and the manifest lists them', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'likeness-build-')), 'tiny');
    const progress: BuildProgress[] = [];
    const m = await buildPackFromPaths({ from: TINY, out, name: 'tiny', onProgress: (p) => progress.push(p) });
    for (const c of ['text_encoder', 'unet', 'vae'] as const) {
      expect(
        Buffer.compare(
          readFileSync(join(out, PACK_PATHS[c])),
          readFileSync(
            join(TINY, c, c === 'text_encoder' ? 'model.safetensors' : 'diffusion_pytorch_model.safetensors'),
          ),
        ),
      ).toBe(0);
    }
    expect(m.files.map((f) => f.path)).toContain('tokenizer/merges.txt');
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).files).toEqual(m.files);
    const last = progress[progress.length - 1];
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(readdirSync(join(out, '..'))).toEqual(['tiny']); // no staging folder left
  });

  it('tiny-sd.ldm.safetensors with --config tiny-sd gives exactly the tensors of tiny-sd', async () => {
    const { file, manifest } = await buildInMemory(
      base({ source: { kind: 'single-file', file: memorySource(TINY_LDM, ldm.bytes), config: nodeFolder(TINY) } }),
    );
    for (const c of ['text_encoder', 'unet', 'vae'] as const) expectSameTensors(file(c), TINY_WEIGHTS[c], c);
    expect(manifest.architecture.unet).toMatchObject({ sample_size: 8, layers_per_block: 1 });
    // Without --image-encoder, the image encoder is the config folder's image_encoder/.
    const withoutFlag = await buildInMemory(
      base({
        source: { kind: 'single-file', file: memorySource(TINY_LDM, ldm.bytes), config: nodeFolder(TINY) },
        imageEncoder: undefined,
      }),
    );
    expect(withoutFlag.manifest.files.find((f) => f.component === 'image_encoder')?.sha256).toBe(
      manifest.files.find((f) => f.component === 'image_encoder')?.sha256,
    );
  });

  it('bf16 and fp16 sources: fp32 / fp16 pack tensors hold the same values, rounded to nearest even', async () => {
    const toBf16 = ldmVariant((_n, t) => ({
      ...t,
      dtype: 'BF16',
      data: convertFloats(t.data as Uint8Array, 'F32', 'BF16', 'x'),
    }));
    const src = (bytes: Uint8Array) => ({
      kind: 'single-file' as const,
      file: memorySource('bf16.safetensors', bytes),
      config: nodeFolder(TINY),
    });
    const f32 = await buildInMemory(base({ source: src(toBf16) }));
    const f16 = await buildInMemory(base({ source: src(toBf16), fp16: true }));
    const bf = parseSafetensors(toBf16);
    const name = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight';
    const ldmName = diffusersToLdmName('unet', name, 'sd1', LDM_CFG);
    const want = bf.float32(ldmName);
    expect(f32.file('unet').info(name).dtype).toBe('F32');
    expect(f32.file('unet').float32(name)).toEqual(want);
    expect(f16.file('unet').info(name).dtype).toBe('F16');
    expect(f16.file('unet').float32(name)).toEqual(Float32Array.from(want, (v) => f16BitsToF32(f32ToF16Bits(v))));
    // an fp16 source stays fp16 without --fp16
    const toF16 = ldmVariant((_n, t) => ({
      ...t,
      dtype: 'F16',
      data: convertFloats(t.data as Uint8Array, 'F32', 'F16', 'x'),
    }));
    const h = await buildInMemory(base({ source: src(toF16) }));
    expect(h.file('unet').info(name).dtype).toBe('F16');
    expect(h.file('unet').float32(name)).toEqual(parseSafetensors(toF16).float32(ldmName));
  });

  it('non-pruned files: EMA copies, schedule buffers and position ids are left out; --ema takes the EMA UNet', async () => {
    const extra: SafetensorsTensorInput[] = [
      { name: 'alphas_cumprod', dtype: 'F32', shape: [1000], data: new Float32Array(1000).fill(0.5) },
      { name: 'model_ema.decay', dtype: 'F32', shape: [], data: new Float32Array([0.9999]) },
      { name: 'model_ema.num_updates', dtype: 'I32', shape: [], data: new Uint8Array(4) },
      {
        name: 'cond_stage_model.transformer.text_model.embeddings.position_ids',
        dtype: 'I64',
        shape: [1, 77],
        data: new Uint8Array(77 * 8),
      },
    ];
    for (const n of ldm.names()) {
      if (!n.startsWith('model.diffusion_model.')) continue;
      extra.push({ name: emaName(n), dtype: 'F32', shape: ldm.info(n).shape, data: ldm.float32(n).map((v) => -v) });
    }
    const full = ldmVariant((_n, t) => t, extra);
    const src = {
      kind: 'single-file' as const,
      file: memorySource('full.safetensors', full),
      config: nodeFolder(TINY),
    };
    const lines: string[] = [];
    const plain = await buildInMemory(base({ source: src, log: (l) => lines.push(l) }));
    expectSameTensors(plain.file('unet'), TINY_WEIGHTS.unet, 'unet');
    expect(lines.join('\n')).toMatch(/208 tensors left out: EMA copy of the UNet/);
    expect(lines.join('\n')).toMatch(/1 tensor left out: noise schedule buffer/);
    expect(lines.join('\n')).toMatch(/1 tensor left out: position ids/);
    const ema = await buildInMemory(base({ source: { ...src, ema: true } }));
    expect(ema.file('unet').float32('conv_in.weight')).toEqual(
      TINY_WEIGHTS.unet.float32('conv_in.weight').map((v) => -v),
    );
    expectSameTensors(ema.file('text_encoder'), TINY_WEIGHTS.text_encoder, 'text_encoder');
  });

  it('tensors outside the SD model are left out with a warning in the log and the manifest', async () => {
    const extra: SafetensorsTensorInput[] = [
      { name: 'embedding_manager.string_to_param.cat', dtype: 'F32', shape: [1, 32], data: new Float32Array(32) },
      { name: 'embedding_manager.string_to_token.cat', dtype: 'I64', shape: [1], data: new Uint8Array(8) },
    ];
    const lines: string[] = [];
    const { file, manifest } = await buildInMemory(
      base({
        source: {
          kind: 'single-file',
          file: memorySource(
            'extras.safetensors',
            ldmVariant((_n, t) => t, extra),
          ),
          config: nodeFolder(TINY),
        },
        log: (l) => lines.push(l),
      }),
    );
    for (const c of ['text_encoder', 'unet', 'vae'] as const) expectSameTensors(file(c), TINY_WEIGHTS[c], c);
    const warning = /2 tensors outside the SD model left out \(.*\): embedding_manager\.\* \(2\)/;
    expect(lines.filter((l) => /^ {2}warning: /.test(l))).toEqual([expect.stringMatching(warning)]);
    expect(manifest.description).toMatch(new RegExp(`Warning: ${warning.source}`));
  });

  it("SD 2.x layout: OpenCLIP's stacked q/k/v and names convert value for value; the extra block is left out", async () => {
    const text = TINY_WEIGHTS.text_encoder;
    const L = LDM_CFG.textLayers;
    const openclip: SafetensorsTensorInput[] = [];
    const stacks = new Map<string, Float32Array[]>();
    for (const n of text.names()) {
      const l = diffusersToLdmName('text_encoder', n, 'sd2', LDM_CFG);
      if (/in_proj_(weight|bias)$/.test(l)) {
        const parts = stacks.get(l) ?? [];
        parts[['q_proj', 'k_proj', 'v_proj'].findIndex((p) => n.includes(p))] = text.float32(n);
        stacks.set(l, parts);
      } else openclip.push({ name: l, dtype: 'F32', shape: text.info(n).shape, data: text.float32(n) });
    }
    for (const [l, parts] of stacks) {
      const data = new Float32Array(parts[0].length * 3);
      parts.forEach((p, k) => data.set(p, k * p.length));
      const one = text.info(
        l.endsWith('weight')
          ? 'text_model.encoder.layers.0.self_attn.q_proj.weight'
          : 'text_model.encoder.layers.0.self_attn.q_proj.bias',
      ).shape;
      openclip.push({ name: l, dtype: 'F32', shape: [one[0] * 3, ...one.slice(1)], data });
    }
    // OpenCLIP's last block (SD 2 uses the penultimate layer), projection and logit scale
    openclip.push({
      name: `cond_stage_model.model.transformer.resblocks.${L}.ln_1.weight`,
      dtype: 'F32',
      shape: [32],
      data: new Float32Array(32),
    });
    openclip.push({
      name: 'cond_stage_model.model.text_projection',
      dtype: 'F32',
      shape: [32, 32],
      data: new Float32Array(32 * 32),
    });
    openclip.push({
      name: 'cond_stage_model.model.logit_scale',
      dtype: 'F32',
      shape: [],
      data: new Float32Array([4.6]),
    });
    const bytes = ldmVariant((n, t) => (n.startsWith('cond_stage_model.') ? null : t), openclip);
    const { file, manifest } = await buildInMemory(
      base({ source: { kind: 'single-file', file: memorySource('sd2.safetensors', bytes), config: nodeFolder(TINY) } }),
    );
    expectSameTensors(file('text_encoder'), text, 'text_encoder');
    // the pad token comes from --config's tokenizer_config.json (bundled SD 2 configs say "!")
    expect(manifest.tokenizer.padToken).toBe('<|endoftext|>');
  });

  it('--vae overrides the baked-in VAE: an A1111-style LDM VAE file, or a diffusers vae folder', async () => {
    const vaeLdm = writeSafetensors(
      ldm
        .names()
        .filter((n) => n.startsWith('first_stage_model.'))
        .map((n) => ({
          name: n.slice('first_stage_model.'.length),
          dtype: 'F32' as const,
          shape: ldm.info(n).shape,
          data: ldm.float32(n).map((v) => v * 2),
        }))
        .concat([{ name: 'model_ema.decay', dtype: 'F32', shape: [], data: new Float32Array([1]) }]),
    );
    const single = { kind: 'single-file' as const, file: memorySource(TINY_LDM, ldm.bytes), config: nodeFolder(TINY) };
    const a = await buildInMemory(base({ source: single, vae: { file: memorySource('vae-ft.safetensors', vaeLdm) } }));
    const name = 'decoder.mid_block.attentions.0.to_q.weight';
    expect(a.file('vae').info(name).shape).toEqual([32, 32]);
    expect(a.file('vae').float32(name)).toEqual(TINY_WEIGHTS.vae.float32(name).map((v) => v * 2));
    expect(a.file('vae').names().length).toBe(TINY_WEIGHTS.vae.names().length);
    const b = await buildInMemory(
      base({ source: { kind: 'diffusers', folder: nodeFolder(TINY) }, vae: { folder: nodeFolder(join(TINY, 'vae')) } }),
    );
    expectSameTensors(b.file('vae'), TINY_WEIGHTS.vae, 'vae');
  });

  it('refuses pickles (.ckpt) with the reason and a conversion command', async () => {
    for (const [name, bytes] of [
      ['model.ckpt', new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0])],
      ['model.safetensors', new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0, 0, 0, 0, 0, 0])],
    ] as const) {
      const sink = memoryPackSink();
      await expect(
        buildPack(base({ sink, source: { kind: 'single-file', file: memorySource(name, bytes) } })),
      ).rejects.toThrow(/pickle.*arbitrary code[\s\S]*weights_only=True/);
      expect(sink.created).toEqual([]);
    }
  });

  it('bad inputs fail before any weight is written, naming the problem', async () => {
    const fails = async (o: BuildPackOptions, re: RegExp) => {
      const sink = memoryPackSink();
      await expect(buildPack({ ...o, sink })).rejects.toThrow(re);
      expect(sink.created).toEqual([]);
    };
    const karras = memorySource(
      's.json',
      new TextEncoder().encode('{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true}'),
    );
    await fails(
      base({ source: { kind: 'diffusers', folder: nodeFolder(TINY) }, scheduler: karras }),
      /use_karras_sigmas = true: Karras/,
    );
    // tiny weights against the bundled SD 1.5 configs: the names do not fit SD 1.5's layout
    await fails(
      base({
        source: { kind: 'single-file', file: memorySource(TINY_LDM, ldm.bytes) },
        tokenizer: memorySource('m.txt', new Uint8Array([35])),
      }),
      /that no SD 1\.x part has|do not match/,
    );
    // a config folder without image_encoder/ and no --image-encoder
    const configs = nodeFolder(TINY);
    await fails(
      base({
        source: {
          kind: 'single-file',
          file: memorySource(TINY_LDM, ldm.bytes),
          config: {
            name: TINY,
            open: (p) => (p.startsWith('image_encoder/') ? Promise.resolve(null) : configs.open(p)),
          },
        },
        imageEncoder: undefined,
      }),
      /needs a CLIP image encoder.*--image-encoder/,
    );
  });

  it('an interrupted build leaves nothing that looks like a pack', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'likeness-abort-'));
    const out = join(parent, 'tiny');
    const abort = new AbortController();
    await expect(
      buildPackFromPaths({
        from: TINY,
        out,
        name: 'tiny',
        signal: abort.signal,
        onProgress: (p) => p.bytesDone > 1e6 && abort.abort(new Error('stop')),
      }),
    ).rejects.toThrow(/stop/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
    // a build refused while planning removes its (empty) staging folder too
    await expect(buildPackFromPaths({ from: TINY, out, name: 'tiny', variant: 'sd15' })).rejects.toThrow(
      /apply to single-file/,
    );
    await expect(buildPackFromPaths({ from: TINY_LDM, out, name: 'tiny' })).rejects.toThrow(
      /that no SD 1\.x part has|tokenizer|image encoder/,
    );
    expect(readdirSync(parent)).toEqual([]);
  });
});

/** A single file of the given names and shapes whose data reads as zeros, made on demand. */
function virtualLdm(name: string, keysFile: string, dtype: 'F32' | 'F16' | 'BF16') {
  const keys = JSON.parse(readFileSync(new URL(keysFile, REF), 'utf8')).keys as { name: string; shape: number[] }[];
  const size = dtype === 'F32' ? 4 : 2;
  const layout = planSafetensorsLayout(
    keys.map((k) => ({ name: k.name, dtype, shape: k.shape, byteLength: k.shape.reduce((a, b) => a * b, 1) * size })),
    { format: 'pt' },
  );
  return {
    name,
    size: layout.fileSize,
    read: async (offset: number, length: number) => {
      const out = new Uint8Array(length);
      const head = layout.header.subarray(offset, Math.min(offset + length, layout.header.length));
      out.set(head);
      return out;
    },
  };
}

describe('likeness pack: real-size single files (planning on the full key lists)', () => {
  const sd15Text = nodeFolder(join(TINY, '..')); // only for a tokenizer: tiny-sd's merges
  // CLIP ViT-L/14 vision at full size: its real config and a zero-data weights file
  const vitL: SourceFolder = {
    name: 'clip-vit-large-patch14-vision',
    open: async (path) =>
      path === 'config.json'
        ? memorySource(
            path,
            readFileSync(new URL('keys/clip-vit-large-patch14-vision-with-projection.config.json', REF)),
          )
        : path === 'model.safetensors'
          ? virtualLdm(path, 'keys/clip-vit-large-patch14-vision-with-projection.keys.json', 'F32')
          : null,
  };
  for (const [variant, keysFile, dtype, unetBytes] of [
    ['sd15', 'single-file/sd15-ldm.keys.json', 'F32', 859520964 * 4],
    ['sd21-base', 'single-file/sd21-ldm.keys.json', 'F16', 865910724 * 2],
    ['sd21', 'single-file/sd21-ldm.keys.json', 'BF16', 865910724 * 4],
  ] as const) {
    it(`${variant}: every tensor placed, every config and model tensor checked, before any byte is converted`, async () => {
      const sink = memoryPackSink();
      const lines: string[] = [];
      const m = await buildPack({
        source: { kind: 'single-file', file: virtualLdm(`${variant}.safetensors`, keysFile, dtype), variant },
        sink,
        name: variant,
        imageEncoder: vitL,
        tokenizer: (await sd15Text.open('tiny-sd/tokenizer/merges.txt'))!,
        dryRun: true,
        log: (l) => lines.push(l),
      });
      expect(sink.created).toEqual([]);
      const unet = m.files.find((f) => f.path === 'unet/diffusion_pytorch_model.safetensors')!;
      expect(unet.bytes - unetBytes).toBeGreaterThan(0); // + header
      expect(unet.bytes - unetBytes).toBeLessThan(200_000);
      expect(m.architecture.unet.cross_attention_dim).toBe(variant === 'sd15' ? 768 : 1024);
      expect(m.scheduler.prediction_type).toBe(variant === 'sd21' ? 'v_prediction' : 'epsilon');
      if (variant !== 'sd15') expect(lines.join('\n')).toMatch(/12 tensors left out: OpenCLIP block 23/);
      if (variant === 'sd21') {
        // 768-v: 96×96 latents, upcast attention; no tuning encoder (none was given), so
        // personalization starts from the class word
        expect(m.architecture.unet).toMatchObject({ sample_size: 96, upcast_attention: true });
        expect(m.imageSize).toBe(768);
        expect(m.architecture.tuningEncoder).toBeUndefined();
        expect(lines.join('\n')).toMatch(/no tuning encoder/);
      }
    });
  }
});

describe('likeness pack: browser-style sources', () => {
  it('Blob sources (File.slice) give the same pack as the Node file handles', async () => {
    const blobs = new Map<string, Blob>();
    for (const dir of ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler', 'image_encoder']) {
      for (const f of readdirSync(join(TINY, dir)))
        blobs.set(`${dir}/${f}`, new Blob([readFileSync(join(TINY, dir, f))]));
    }
    const viaBlob = await buildInMemory(
      base({ source: { kind: 'diffusers', folder: blobFolder('picked', blobs) }, imageEncoder: undefined }),
    );
    const viaNode = await buildInMemory(
      base({ source: { kind: 'diffusers', folder: nodeFolder(TINY) }, imageEncoder: undefined }),
    );
    expect(viaBlob.manifest.files).toEqual(viaNode.manifest.files);
    const single = await buildInMemory(
      base({
        source: {
          kind: 'single-file',
          file: blobSource('tiny.safetensors', new Blob([ldm.bytes as Uint8Array<ArrayBuffer>])),
          config: blobFolder('cfg', blobs),
        },
      }),
    );
    for (const c of ['text_encoder', 'unet', 'vae'] as const) expectSameTensors(single.file(c), TINY_WEIGHTS[c], c);
  });
});

describe('likeness pack: diffusers folders as the Hub has them', () => {
  it('sharded weights (index.json), an fp16 variant file, old VAE attention names and position_ids', async () => {
    const blobs = new Map<string, Blob>();
    for (const dir of ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler', 'image_encoder']) {
      for (const f of readdirSync(join(TINY, dir)))
        if (f.endsWith('.json') || f.endsWith('.txt'))
          blobs.set(`${dir}/${f}`, new Blob([readFileSync(join(TINY, dir, f))]));
    }
    const raw = (f: SafetensorsFile, names: string[], rename = (n: string) => n): SafetensorsTensorInput[] =>
      names.map((n) => ({ name: rename(n), dtype: f.info(n).dtype, shape: f.info(n).shape, data: f.rawBytes(n) }));
    const blob = (t: SafetensorsTensorInput[]) =>
      new Blob([writeSafetensors(t, { format: 'pt' }) as Uint8Array<ArrayBuffer>]);
    // UNet in two shards
    const u = TINY_WEIGHTS.unet;
    const half = Math.floor(u.names().length / 2);
    blobs.set('unet/diffusion_pytorch_model-00001-of-00002.safetensors', blob(raw(u, u.names().slice(0, half))));
    blobs.set('unet/diffusion_pytorch_model-00002-of-00002.safetensors', blob(raw(u, u.names().slice(half))));
    const weightMap = Object.fromEntries(
      u.names().map((n, i) => [n, `diffusion_pytorch_model-0000${i < half ? 1 : 2}-of-00002.safetensors`]),
    );
    blobs.set(
      'unet/diffusion_pytorch_model.safetensors.index.json',
      new Blob([JSON.stringify({ metadata: {}, weight_map: weightMap })]),
    );
    // VAE with the names older diffusers wrote, as an fp16 variant file
    const old = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' } as Record<string, string>;
    const v = TINY_WEIGHTS.vae;
    blobs.set(
      'vae/diffusion_pytorch_model.fp16.safetensors',
      blob(
        raw(v, v.names(), (n) =>
          n.replace(/(attentions\.0\.)(to_q|to_k|to_v|to_out\.0)\./, (_m, p: string, w: string) => `${p}${old[w]}.`),
        ),
      ),
    );
    // text encoder as transformers 4.x saved it: with position_ids
    const t = TINY_WEIGHTS.text_encoder;
    blobs.set(
      'text_encoder/model.safetensors',
      blob([
        ...raw(t, t.names()),
        { name: 'text_model.embeddings.position_ids', dtype: 'I64', shape: [1, 77], data: new Uint8Array(77 * 8) },
      ]),
    );
    blobs.set(
      'image_encoder/model.safetensors',
      new Blob([readFileSync(join(TINY, 'image_encoder/model.safetensors'))]),
    );
    const { file } = await buildInMemory(
      base({ source: { kind: 'diffusers', folder: blobFolder('hub', blobs) }, imageEncoder: undefined }),
    );
    for (const c of ['text_encoder', 'unet', 'vae'] as const) expectSameTensors(file(c), TINY_WEIGHTS[c], c);
  });
});

describe('likeness pack: the bundled tokenizer', () => {
  it('a single file with no tokenizer anywhere takes the bundled CLIP merges, which tokenize as CLIP does', async () => {
    const tiny = nodeFolder(TINY);
    // tiny-sd's configs without its tokenizer/: as a single file with a config folder that has none
    const configs: SourceFolder = {
      name: 'tiny-sd (no tokenizer)',
      open: async (path) => (path.startsWith('tokenizer/') ? null : tiny.open(path)),
    };
    const file = await openNodeSource(TINY_LDM);
    const bundled = await openNodeSource(BUNDLED_MERGES);
    try {
      const base = {
        source: { kind: 'single-file' as const, file, config: configs },
        imageEncoder: { name: 'image_encoder', open: (p: string) => tiny.open(`image_encoder/${p}`) },
        name: 't',
      };
      await expect(buildPack({ ...base, sink: memoryPackSink() })).rejects.toThrow(/no tokenizer/);
      const sink = memoryPackSink();
      const lines: string[] = [];
      await buildPack({ ...base, sink, bundledTokenizer: bundled, log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/using the bundled CLIP BPE merges/);
      const merges = new TextDecoder().decode(sink.files!.get('tokenizer/merges.txt'));
      const cases = JSON.parse(readFileSync(new URL('../clip/tokenizer-cases.json', REF), 'utf8')) as {
        cases: { text: string; ids_untruncated: number[] }[];
      };
      const tok = new ClipTokenizer(merges);
      for (const c of cases.cases) expect(tok.encode(c.text), c.text).toEqual(c.ids_untruncated.slice(1, -1));
    } finally {
      await file.close();
      await bundled.close();
      await tiny.closeAll();
    }
  });
});
