// The synthetic single-file checkpoint: its names are what convertLdm maps back onto the
// synthetic diffusers model (every tensor placed, or ignored for SD 2's extra OpenCLIP
// parts), and its values are the diffusers tensors' own — renamed, stacked (SD 2 q/k/v)
// and reshaped (VAE 1×1 convs) — checked by reading the diffusers tensors back through
// convertLdm's byte offsets.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertLdm, type LdmComponent } from './ldm-convert.ts';
import { parseSafetensors } from './safetensors.ts';
import { ldmKeys } from './synthetic-ldm.ts';
import { planSyntheticSd, writeRandomSafetensors } from './synthetic-sd.ts';

const dir = mkdtempSync(join(tmpdir(), 'synthetic-ldm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REDUCED = { imageSize: 64, unetLayersPerBlock: 1, vaeLayersPerBlock: 1, textLayers: 1 } as const;

describe('synthetic single-file checkpoints', () => {
  for (const [variant, family, ignored] of [
    ['sd15', 'sd1', 0],
    // OpenCLIP block 1 (12 tensors after the one diffusers layer), text_projection, logit_scale
    ['sd21', 'sd2', 14],
  ] as const) {
    it(`${variant} at full width, one layer per block: convertLdm places every name back, with shapes`, () => {
      const plan = planSyntheticSd({ variant, ...REDUCED });
      const { keys, configs } = ldmKeys(plan.components, family);
      const conv = convertLdm(new Map(keys.map((k) => [k.name, k.shape])), family, configs);
      expect(conv.extras).toEqual([]);
      expect(conv.ignored.size).toBe(ignored);
      for (const c of ['unet', 'vae', 'text_encoder'] as const) {
        const want = plan.components.find((p) => p.dir === c)!.keys;
        const got = conv.components[c];
        expect([...got.keys()].sort(), c).toEqual(want.map((k) => k.name).sort());
        for (const k of want) expect(got.get(k.name)!.shape, k.name).toEqual(k.shape);
      }
    });
  }

  it('holds the diffusers tensors’ values: renamed, SD 2 q/k/v stacked, VAE attention as 1×1 convs', () => {
    const plan = planSyntheticSd({ variant: 'sd21', ...REDUCED });
    // A subset small enough to write twice: layer 0's self-attention and the VAE mid attention.
    const pick = (n: string) =>
      /^text_model\.encoder\.layers\.0\.self_attn\./.test(n) || /^decoder\.mid_block\.attentions\.0\./.test(n);
    const diffusers = plan.components
      .filter((c) => c.dir !== 'image_encoder')
      .flatMap((c) => c.keys.filter((k) => pick(k.name)).map((k) => ({ ...k, component: c.dir as LdmComponent })));
    const { keys, configs } = ldmKeys(plan.components, 'sd2');
    const ldmSubset = keys.filter((k) => k.from?.some((p) => pick(p.name)));
    expect(ldmSubset.map((k) => k.name).sort()).toEqual([
      'cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias',
      'cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight',
      'cond_stage_model.model.transformer.resblocks.0.attn.out_proj.bias',
      'cond_stage_model.model.transformer.resblocks.0.attn.out_proj.weight',
      'first_stage_model.decoder.mid.attn_1.k.bias',
      'first_stage_model.decoder.mid.attn_1.k.weight',
      'first_stage_model.decoder.mid.attn_1.norm.bias',
      'first_stage_model.decoder.mid.attn_1.norm.weight',
      'first_stage_model.decoder.mid.attn_1.proj_out.bias',
      'first_stage_model.decoder.mid.attn_1.proj_out.weight',
      'first_stage_model.decoder.mid.attn_1.q.bias',
      'first_stage_model.decoder.mid.attn_1.q.weight',
      'first_stage_model.decoder.mid.attn_1.v.bias',
      'first_stage_model.decoder.mid.attn_1.v.weight',
    ]);
    expect(ldmSubset.find((k) => k.name.endsWith('in_proj_weight'))!.shape).toEqual([3072, 1024]);
    expect(ldmSubset.find((k) => k.name.endsWith('attn_1.q.weight'))!.shape).toEqual([512, 512, 1, 1]);
    writeRandomSafetensors(join(dir, 'd.safetensors'), diffusers, 'fp16', 3);
    writeRandomSafetensors(join(dir, 'l.safetensors'), ldmSubset, 'fp16', 3);
    const d = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'd.safetensors'))));
    const l = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'l.safetensors'))));
    const conv = convertLdm(new Map(ldmSubset.map((k) => [k.name, k.shape])), 'sd2', configs);
    for (const k of diffusers) {
      const m = conv.components[k.component].get(k.name)!;
      const n = k.shape.reduce((a, b) => a * b, 1);
      const got = l.float32(m.source).subarray(m.elementOffset, m.elementOffset + n);
      const want = d.float32(k.name);
      // Byte comparison: toEqual on millions of elements takes minutes.
      const same = Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(
        Buffer.from(want.buffer, want.byteOffset, want.byteLength),
      );
      expect([k.name, got.length, same]).toEqual([k.name, want.length, true]);
    }
  });
});
