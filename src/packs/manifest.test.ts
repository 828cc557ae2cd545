import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultTuningEncoderConfig } from './build-pack.ts';
import { tinyManifestBase } from '../../test/test-pack.ts';
import { ModelConfigError } from '../models/model-config-error.ts';
import type { TuningEncoderConfig } from '../models/tuning-encoder/tuning-encoder-config.ts';
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import {
  loraScale,
  ManifestError,
  packBytes,
  packPathProblem,
  parseManifest,
  validateManifest,
  type Manifest,
} from './manifest.ts';

const REF = new URL('../../../shared/data/reference/', import.meta.url);
const json = (rel: string) => JSON.parse(readFileSync(new URL(rel, REF), 'utf8'));
const hash = (c: string) => c.repeat(64);

/** The tiny pack's manifest (configs carried verbatim) with placeholder hashes. */
function tinyManifest(): Manifest {
  const base = tinyManifestBase();
  return {
    ...base,
    tokenizer: { ...base.tokenizer, vocab: 'tokenizer/vocab.json' },
    files: [
      {
        path: 'text_encoder/model.safetensors',
        role: 'weights',
        component: 'text_encoder',
        bytes: 6406760,
        sha256: hash('a'),
      },
      {
        path: 'unet/diffusion_pytorch_model.safetensors',
        role: 'weights',
        component: 'unet',
        bytes: 3194952,
        sha256: hash('b'),
      },
      {
        path: 'vae/diffusion_pytorch_model.safetensors',
        role: 'weights',
        component: 'vae',
        bytes: 100,
        sha256: hash('c'),
      },
      {
        path: 'image_encoder/model.safetensors',
        role: 'weights',
        component: 'image_encoder',
        bytes: 100,
        sha256: hash('d'),
      },
      {
        path: 'onnx/unet.onnx',
        role: 'onnx',
        component: 'unet',
        graph: 'unet',
        externalData: ['unet/diffusion_pytorch_model.safetensors'],
        bytes: 50,
        sha256: hash('e'),
      },
      { path: 'tokenizer/merges.txt', role: 'tokenizer', bytes: 10, sha256: hash('f') },
      { path: 'tokenizer/vocab.json', role: 'tokenizer', bytes: 10, sha256: hash('0') },
    ],
  };
}

function issues(m: unknown): string[] {
  try {
    validateManifest(m);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as ManifestError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('pack manifest', () => {
  it('accepts the tiny pack with its config.json files carried verbatim', () => {
    const m = tinyManifest();
    expect(validateManifest(m)).toBe(m);
    expect(packBytes(m)).toBe(6406760 + 3194952 + 100 + 100 + 50 + 10 + 10);
    expect(loraScale(m)).toBe(1);
  });

  it('accepts the real SD 1.5 and SD 2.1 architecture configs (keys/*.config.json)', () => {
    for (const [unet, text, hidden] of [
      ['keys/sd15-unet.config.json', 'keys/clip-vit-large-patch14-text.config.json', 768],
      ['keys/sd21-unet.config.json', 'keys/clip-vit-large-patch14-text.config.json', 1024],
    ] as const) {
      const m = tinyManifest();
      m.architecture.unet = json(unet);
      m.architecture.textEncoder = { ...json(text), hidden_size: hidden, num_attention_heads: hidden / 64 };
      m.architecture.vae = json('keys/sd-vae.config.json');
      m.architecture.imageEncoder = json('keys/clip-vit-large-patch14-vision-with-projection.config.json');
      m.imageSize = 512;
      m.latentSize = 64;
      expect(issues(m), unet).toEqual([]);
    }
  });

  it('reports every defect at once, each with its JSON path', () => {
    const m = tinyManifest() as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    m.format = 'likeness-pack/2';
    delete m.name;
    m.extra = 1;
    m.files[2].sha256 = 'abc';
    m.files[3].sha256 = hash('A');
    m.files[1].bytes = -1;
    m.files[0].path = '../evil.safetensors';
    m.files[5].role = 'weights';
    m.files[6].path = 'TOKENIZER/merges.txt';
    m.files[4].externalData = ['nope.safetensors'];
    m.architecture.unet.block_out_channels = [32, 60];
    m.architecture.unet.down_block_types = ['CrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'];
    m.architecture.unet.cross_attention_dim = 48;
    m.architecture.unet.in_channels = 3;
    m.architecture.unet.addition_embed_type = 'text_time';
    m.architecture.textEncoder.hidden_act = 'relu';
    m.architecture.lora.targets = ['to_q', 'proj_in', 'to_q'];
    m.architecture.lora.rank = 0;
    m.imageSize = 20;
    m.vaeScalingFactor = 0.13025;
    m.scheduler.beta_end = 0.0001;
    m.defaults.sampler = 'plms';
    m.defaults.blend = 1.5;
    m.defaults.placeholder = 'my thing';
    m.tokenizer.maxLength = 100;
    m.tokenizer.merges = 'missing.txt';
    const got = issues(m);
    const want = [
      'extra: unknown field',
      'format: expected "likeness-pack/1", got "likeness-pack/2" (a newer pack format: update the app)',
      'name: required',
      'files[0].path: may not contain a ".." segment',
      'files[1].bytes: expected an integer ≥ 0, got -1',
      'files[2].sha256: expected 64 lowercase hex chars, got 3 chars',
      'files[3].sha256: expected 64 lowercase hex chars, got 64 chars (uppercase)',
      'files[5].component: required',
      'files[5].path: weights must be a .safetensors file',
      'files[6].path: same path as files[5] (paths must differ in more than case)',
      'files[4].externalData[0]: "nope.safetensors" is not a weights file of this pack',
      'vaeScalingFactor: 0.13025 differs from architecture.vae.scaling_factor 0.18215',
      'architecture.textEncoder.hidden_act: expected one of "quick_gelu", "gelu", got "relu"',
      "architecture.unet.in_channels: 3 differs from the VAE's latent_channels 4",
      'architecture.unet.down_block_types: expected 2 entries (one per block_out_channels), got 3',
      "architecture.unet.cross_attention_dim: must equal the text encoder's hidden_size 32, got 48",
      'architecture.unet.block_out_channels[1]: 60 channels are not divisible by norm_num_groups 8',
      'architecture.unet.block_out_channels[1]: 60 channels are not divisible by 8 heads (attention_head_dim)',
      'architecture.unet.addition_embed_type: not supported (must be null), got "text_time"',
      'architecture.lora.rank: expected an integer ≥ 1, got 0',
      'architecture.lora.targets[1]: expected one of "to_q", "to_k", "to_v", "to_out.0", optionally prefixed "attn1." or "attn2.", got "proj_in"',
      'architecture.lora.targets[2]: duplicate target "to_q"',
      "latentSize: imageSize 20 / latentSize 8 must equal the VAE's downsampling factor 2",
      'scheduler.beta_end: must exceed beta_start 0.00085, got 0.0001',
      'defaults.sampler: expected one of "ddim", "euler", "dpmpp-2m", got "plms"',
      'defaults.blend: expected a number ≤ 1, got 1.5',
      'defaults.placeholder: must be one word (no spaces)',
      'tokenizer.merges: "missing.txt" is not in files',
      'tokenizer.vocab: "tokenizer/vocab.json" is not in files', // files[6] was renamed
      "tokenizer.maxLength: 100 exceeds the text encoder's max_position_embeddings 77",
    ];
    for (const w of want) expect(got, `missing: ${w}\n got:\n${got.join('\n')}`).toContain(w);
    expect(got.length).toBe(want.length);
    expect(() => validateManifest(m)).toThrow(/^invalid pack manifest \(30 problems\):\n {2}extra: unknown field\n/);
  });

  it('requires the sections and a weights file per component; tuning encoder config and weights go together', () => {
    expect(issues(null)).toEqual([': expected an object, got null']);
    expect(issues({ format: 'likeness-pack/1' })).toEqual(
      expect.arrayContaining([
        'name: required',
        'files: required',
        'architecture: required',
        'scheduler: required',
        'defaults: required',
        'tokenizer: required',
        'imageSize: required',
      ]),
    );
    const m = tinyManifest();
    m.files = m.files.filter((f) => f.component !== 'vae');
    expect(issues(m)).toEqual(['files: no weights file for component "vae"']);
    const t = tinyManifest();
    t.architecture.tuningEncoder = { _class_name: 'TuningEncoder', ...defaultTuningEncoderConfig(t.architecture) };
    expect(issues(t)).toEqual(['files: no weights file for component "tuning_encoder"']);
    t.files.push({
      path: 'tuning_encoder/model.safetensors',
      role: 'weights',
      component: 'tuning_encoder',
      bytes: 1,
      sha256: hash('9'),
    });
    expect(issues(t)).toEqual([]);
    delete t.architecture.tuningEncoder;
    expect(issues(t)).toEqual(['files: weights for "tuning_encoder" but no architecture.tuningEncoder config']);
  });

  it('checks per-block lists, heads and supported block types in the UNet config', () => {
    const m = tinyManifest();
    m.architecture.unet.attention_head_dim = [8, 8, 8];
    m.architecture.unet.up_block_types = ['UpBlock2D', 'CrossAttnUpBlock3D' as 'UpBlock2D'];
    m.architecture.unet.only_cross_attention = 'yes' as unknown as boolean;
    m.architecture.unet.attention_type = 'gated';
    expect(issues(m)).toEqual([
      'architecture.unet.up_block_types[1]: expected one of "CrossAttnUpBlock2D", "UpBlock2D", got "CrossAttnUpBlock3D"',
      'architecture.unet.attention_head_dim: expected one entry per block (2), got 3',
      'architecture.unet.only_cross_attention: expected true/false or a list of them, got "yes"',
      'architecture.unet.attention_type: only "default" is supported, got "gated"',
    ]);
    const n = tinyManifest();
    n.architecture.unet.num_attention_heads = [3, 8]; // overrides the legacy field: 32 channels / 3 heads fails
    expect(issues(n)).toEqual([
      'architecture.unet.block_out_channels[0]: 32 channels are not divisible by 3 heads (num_attention_heads)',
    ]);
  });

  it('refuses what the UNet code cannot run, by the same check resolveUNetConfig runs', () => {
    const m = tinyManifest();
    m.architecture.unet.layers_per_block = [1, 2];
    m.architecture.unet.transformer_layers_per_block = 2;
    m.architecture.unet.only_cross_attention = [false, true];
    const want = [
      'layers_per_block: must be the same for every block, got [1,2]',
      'transformer_layers_per_block: only 1 is supported, got 2',
      'only_cross_attention: not supported (must be false)',
    ];
    expect(issues(m)).toEqual(want.map((w) => `architecture.unet.${w}`));
    let err: unknown;
    try {
      resolveUNetConfig(m.architecture.unet);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelConfigError);
    expect((err as ModelConfigError).kind).toBe('pack');
    expect((err as ModelConfigError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual(want);
  });

  it('checks the tuning encoder config fields the model reads', () => {
    const t = tinyManifest();
    t.files.push({
      path: 'tuning_encoder/model.safetensors',
      role: 'weights',
      component: 'tuning_encoder',
      bytes: 1,
      sha256: hash('9'),
    });
    const { width: _width, ...rest } = defaultTuningEncoderConfig(t.architecture);
    t.architecture.tuningEncoder = {
      ...rest,
      lora_rank: 0,
      trained: 'yes' as unknown as boolean,
    } as TuningEncoderConfig;
    expect(issues(t)).toEqual([
      'architecture.tuningEncoder._class_name: required',
      'architecture.tuningEncoder.width: required',
      'architecture.tuningEncoder.lora_rank: expected an integer ≥ 1, got 0',
      'architecture.tuningEncoder.trained: expected true or false, got "yes"',
    ]);
  });

  it('parseManifest refuses duplicate keys and bad JSON, naming the place', () => {
    const text = JSON.stringify(tinyManifest());
    expect(parseManifest(text).name).toBe('tiny-sd');
    expect(() => parseManifest(text.replace('"name":"tiny-sd"', '"name":"tiny-sd","name":"other"'))).toThrow(
      /duplicate key "name" at character \d+/,
    );
    expect(() => parseManifest('{"format": ')).toThrow(ManifestError);
    // "__proto__" stays a plain (unknown) field instead of changing the object's prototype.
    expect(() => parseManifest(text.replace('{', '{"__proto__":{"x":1},'))).toThrow(/__proto__: unknown field/);
  });

  it('keeps pack paths plain', () => {
    expect(packPathProblem('unet/model.safetensors')).toBeNull();
    expect(packPathProblem('/abs')).toMatch(/relative/);
    expect(packPathProblem('a//b')).toMatch(/empty path segment/);
    expect(packPathProblem('a/./b')).toMatch(/"\." segment/);
    expect(packPathProblem('a\\b')).toMatch(/separator/);
    expect(packPathProblem('a b')).toMatch(/may only contain/);
    expect(packPathProblem('%2e%2e/x')).toMatch(/may only contain/);
  });
});
