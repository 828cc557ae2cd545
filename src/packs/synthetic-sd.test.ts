// The synthetic SD folder: real names/shapes (reference key lists), reduced layer counts
// that only drop layers, and seeded values with the stated scale.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { f16BitsToF32 } from '../engine/dtype.ts';
import { parseSafetensors } from './safetensors.ts';
import { initRule, planSyntheticSd, writeRandomSafetensors, type KeyEntry } from './synthetic-sd.ts';

const REF = new URL('../../../shared/data/reference/keys/', import.meta.url);
const refKeys = (stem: string): KeyEntry[] => JSON.parse(readFileSync(new URL(`${stem}.keys.json`, REF), 'utf8')).keys;
const dir = mkdtempSync(join(tmpdir(), 'synthetic-sd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('planSyntheticSd', () => {
  it('full-size SD 1.5 and SD 2.1 use the reference names, shapes and configs', () => {
    for (const [variant, unetStem, textStem] of [
      ['sd15', 'sd15-unet', 'clip-vit-large-patch14-text'],
      ['sd21', 'sd21-unet', 'sd21-text'],
    ] as const) {
      const plan = planSyntheticSd({ variant });
      const byDir = new Map(plan.components.map((c) => [c.dir, c]));
      expect(byDir.get('unet')!.keys).toEqual(refKeys(unetStem).map((k) => ({ name: k.name, shape: k.shape })));
      expect(byDir.get('text_encoder')!.keys.length).toBe(refKeys(textStem).length);
      expect(byDir.get('vae')!.keys.length).toBe(refKeys('sd-vae').length);
      expect(byDir.get('image_encoder')!.keys.length).toBe(
        refKeys('clip-vit-large-patch14-vision-with-projection').length,
      );
      expect(byDir.get('unet')!.config.sample_size).toBe(variant === 'sd15' ? 64 : 96);
    }
  });

  it('fewer layers only drop layers: every width and the token table stay real', () => {
    const plan = planSyntheticSd({
      imageSize: 64,
      unetLayersPerBlock: 1,
      vaeLayersPerBlock: 1,
      textLayers: 1,
      visionLayers: 1,
      visionImageSize: 56,
    });
    const stems = {
      unet: 'sd15-unet',
      vae: 'sd-vae',
      text_encoder: 'clip-vit-large-patch14-text',
      image_encoder: 'clip-vit-large-patch14-vision-with-projection',
    };
    for (const c of plan.components) {
      const full = new Map(refKeys(stems[c.dir]).map((k) => [k.name, k.shape]));
      for (const k of c.keys) {
        expect(full.has(k.name), `${c.dir}: ${k.name}`).toBe(true);
        // Only these shapes depend on the layer count / input size: an up block's resnets
        // see the skip of a different down layer; the vision positions follow the grid.
        const layerDependent =
          /^up_blocks\.\d\.resnets\.\d\.(norm1\.(weight|bias)|conv1\.weight|conv_shortcut\.weight)$/.test(k.name) ||
          k.name.endsWith('vision_model.embeddings.position_embedding.weight');
        if (!layerDependent) expect(k.shape, `${c.dir}: ${k.name}`).toEqual(full.get(k.name));
      }
    }
    const text = plan.components.find((c) => c.dir === 'text_encoder')!;
    expect(text.keys.find((k) => k.name === 'text_model.embeddings.token_embedding.weight')!.shape).toEqual([
      49408, 768,
    ]);
    expect(text.config.num_hidden_layers).toBe(1);
    const vision = plan.components.find((c) => c.dir === 'image_encoder')!;
    expect(vision.keys.find((k) => k.name === 'vision_model.embeddings.position_embedding.weight')!.shape).toEqual([
      17, 1024,
    ]);
    const vae = plan.components.find((c) => c.dir === 'vae')!;
    expect(vae.keys.filter((k) => k.name.startsWith('encoder.mid_block.attentions.0.to_q.weight'))[0].shape).toEqual([
      512, 512,
    ]);
  });

  it('refuses sizes the models cannot take', () => {
    expect(() => planSyntheticSd({ imageSize: 60 })).toThrow(/multiple of 8/);
    expect(() => planSyntheticSd({ visionImageSize: 50 })).toThrow(/multiple of the 14-pixel patch/);
    expect(() => planSyntheticSd({ textLayers: 0 })).toThrow(/positive integer/);
  });
});

describe('writeRandomSafetensors', () => {
  const keys: KeyEntry[] = [
    { name: 'b.norm1.weight', shape: [64] },
    { name: 'b.norm1.bias', shape: [64] },
    { name: 'a.conv.weight', shape: [32, 16, 3, 3] },
    { name: 'a.conv.bias', shape: [32] },
    { name: 'text_model.embeddings.token_embedding.weight', shape: [3000, 40] },
    // more than one write chunk (2^20 values)
    { name: 'c.proj.weight', shape: [1100, 1000] },
  ];

  it('writes a parseable file whose values follow the init rules, fp16 = fp32 rounded', () => {
    const p32 = join(dir, 'a32.safetensors');
    const p16 = join(dir, 'a16.safetensors');
    writeRandomSafetensors(p32, keys, 'fp32', 3);
    writeRandomSafetensors(p16, keys, 'fp16', 3);
    const f32 = parseSafetensors(new Uint8Array(readFileSync(p32)));
    const f16 = parseSafetensors(new Uint8Array(readFileSync(p16)));
    expect(f32.names()).toEqual([...keys.map((k) => k.name)].sort());
    for (const k of keys) {
      const v = f32.float32(k.name);
      expect(f32.info(k.name).shape).toEqual(k.shape);
      expect(f16.info(k.name).dtype).toBe('F16');
      const rule = initRule(k.name, k.shape);
      if ('constant' in rule) {
        expect(v.every((x) => x === rule.constant)).toBe(true);
      } else {
        const n = v.length;
        const mean = v.reduce((a, b) => a + b, 0) / n;
        const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
        expect(Math.abs(mean)).toBeLessThan((4 * rule.std) / Math.sqrt(n));
        expect(Math.abs(std / rule.std - 1), k.name).toBeLessThan(Math.max(0.02, 2 / Math.sqrt(n)));
        expect(v.reduce((m, x) => Math.max(m, Math.abs(x)), 0)).toBeLessThanOrEqual(
          Math.sqrt(3) * rule.std * (1 + 1e-6),
        );
      }
      // fp16 is fp32 truncated to 11 significant bits: within one fp16 ulp
      const h = new Uint16Array(f16.rawBytes(k.name).slice().buffer);
      for (let i = 0; i < v.length; i += 97) {
        const x = f16BitsToF32(h[i]);
        expect(Math.abs(x - v[i])).toBeLessThanOrEqual(Math.max(Math.abs(v[i]) * 2 ** -10, 2 ** -24));
        expect(Math.sign(x) * Math.sign(v[i])).not.toBe(-1);
      }
    }
    expect(initRule('down_blocks.0.resnets.0.conv1.weight', [320, 320, 3, 3])).toEqual({ std: 1 / Math.sqrt(2880) });
    expect(initRule('vision_model.pre_layrnorm.weight', [1024])).toEqual({ constant: 1 });
    expect(initRule('text_model.encoder.layers.0.layer_norm2.bias', [768])).toEqual({ constant: 0 });
    expect(initRule('mid_block.attentions.0.group_norm.weight', [512])).toEqual({ constant: 1 });
  });

  it('is deterministic per seed and tensor name, whatever the other tensors', () => {
    const pa = join(dir, 'b1.safetensors');
    const pb = join(dir, 'b2.safetensors');
    const pc = join(dir, 'b3.safetensors');
    writeRandomSafetensors(pa, keys, 'fp32', 5);
    writeRandomSafetensors(pb, keys.slice(2, 4), 'fp32', 5);
    writeRandomSafetensors(pc, keys, 'fp32', 6);
    const a = parseSafetensors(new Uint8Array(readFileSync(pa)));
    const b = parseSafetensors(new Uint8Array(readFileSync(pb)));
    const c = parseSafetensors(new Uint8Array(readFileSync(pc)));
    expect(b.float32('a.conv.weight')).toEqual(a.float32('a.conv.weight'));
    expect(c.float32('a.conv.weight')).not.toEqual(a.float32('a.conv.weight'));
  });
});
