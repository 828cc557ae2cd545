import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '../../packs/safetensors.ts';
import { Params } from '../params.ts';
import { ParamRecorder, ShapeOps, type ShapeTensor } from '../shape-ops.ts';
import { unet } from './unet.ts';
import { resolveUNetConfig, type UNetConfig } from './unet-config.ts';

const REF = new URL('../../../../shared/data/reference/', import.meta.url);
const readJson = (path: string) => JSON.parse(readFileSync(new URL(path, REF), 'utf8'));

function unetParams(config: UNetConfig) {
  const cfg = resolveUNetConfig(config);
  const rec = new ParamRecorder();
  const ops = new ShapeOps();
  const size = cfg.sample_size;
  const t = (shape: number[]): ShapeTensor => ({ shape });
  const out = unet(ops, new Params(rec), cfg, {
    sample: t([2, cfg.in_channels, size, size]),
    timesteps: { shape: [2] },
    cond: { context: t([2, 77, cfg.cross_attention_dim]), lora: null, dual: null },
  });
  expect(out.shape).toEqual([2, cfg.out_channels, size, size]);
  return rec.requested;
}

describe('UNet parameter names and shapes', () => {
  it.each(['sd15-unet', 'sd21-unet'])('equal diffusers %s exactly', (stem) => {
    const config = readJson(`keys/${stem}.config.json`);
    const keys: { name: string; shape: number[] }[] = readJson(`keys/${stem}.keys.json`).keys;
    const ours = unetParams(config);
    const theirs = new Map(keys.map((k) => [k.name, k.shape]));
    expect([...ours.keys()].filter((k) => !theirs.has(k))).toEqual([]);
    expect([...theirs.keys()].filter((k) => !ours.has(k))).toEqual([]);
    for (const [name, shape] of theirs) expect(ours.get(name), name).toEqual(shape);
  });

  it('equal the tiny-sd checkpoint', () => {
    const config = readJson('tiny-sd/unet/config.json');
    const file = parseSafetensors(new Uint8Array(readFileSync(new URL('tiny-sd/unet/diffusion_pytorch_model.safetensors', REF))));
    const ours = unetParams(config);
    expect([...ours.keys()].sort()).toEqual(file.names().sort());
    for (const name of file.names()) expect(ours.get(name), name).toEqual(file.info(name).shape);
  });
});
