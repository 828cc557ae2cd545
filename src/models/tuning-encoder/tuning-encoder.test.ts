import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Params } from '../params.ts';
import { ParamRecorder, ShapeOps, type ShapeTensor } from '../shape-ops.ts';
import { resolveUNetConfig } from '../unet/unet-config.ts';
import { tuningEncoder } from './tuning-encoder.ts';
import { loraTargets } from './tuning-encoder-config.ts';

const REF = new URL('../../../../shared/data/reference/', import.meta.url);
const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, REF), 'utf8'));
const t = (shape: number[]): ShapeTensor => ({ shape });

describe('tuning encoder shapes', () => {
  it('targets every attention projection: 32 in tiny-sd (as the LoRA goldens), 128 in SD 1.5', () => {
    const tiny = loraTargets(resolveUNetConfig(readJson('tiny-sd/unet/config.json')));
    expect(tiny.length).toBe(32);
    expect(loraTargets(resolveUNetConfig(readJson('keys/sd15-unet.config.json'))).length).toBe(128);
    const k = tiny.find((x) => x.module === 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k')!;
    expect([k.in, k.out]).toEqual([32, 32]);
  });

  it('predicts v* and per-sample A (B, r, in), B (B, out, r) for every target', () => {
    const unetCfg = resolveUNetConfig(readJson('keys/sd15-unet.config.json'));
    const targets = loraTargets(unetCfg);
    const cfg = {
      clip_channels: 1024, clip_grid: 16, unet_channels: 1280, unet_grid: 8, width: 256, trunk_blocks: 2,
      groups: 32, token_dim: 768, lora_rank: 4, lora_alpha: 4, unet_timestep: 0,
    };
    const rec = new ParamRecorder();
    const out = tuningEncoder(new ShapeOps(), new Params(rec), cfg, targets, t([2, 257, 1024]), t([2, 1280, 8, 8]));
    expect(out.embedding.shape).toEqual([2, 768]);
    const q = out.lora.layers.get('up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_v')!;
    expect([q.A.shape, q.B.shape]).toEqual([[2, 4, 768], [2, 320, 4]]);
    expect(out.lora.scale).toBe(1);
    // A/B heads are shared per width: in ∈ {320, 640, 1280, 768}, out ∈ {320, 640, 1280}.
    expect([...rec.requested.keys()].filter((n) => n.startsWith('hyper.a_heads') && n.endsWith('weight')).length).toBe(4);
    expect([...rec.requested.keys()].filter((n) => n.startsWith('hyper.b_heads') && n.endsWith('weight')).length).toBe(3);
  });
});
