// The LDM → diffusers key conversion on the full SD 1.5 and SD 2.1 key lists: every
// single-file name is used or ignored for a stated reason, the result is exactly the
// diffusers / transformers key lists (names and shapes) of ../shared/data/reference/keys,
// and diffusers → LDM → diffusers gives the names back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  convertLdm,
  detectFamily,
  diffusersToLdmName,
  emaName,
  groupByPrefix,
  type LdmComponent,
  type LdmConfigs,
  type SdFamily,
} from './ldm-convert.ts';

const REF = new URL('../../../shared/data/reference/', import.meta.url);
const keyFile = (path: string) => JSON.parse(readFileSync(new URL(path, REF), 'utf8'));
const keys = (path: string) =>
  new Map((keyFile(path).keys as { name: string; shape: number[] }[]).map((k) => [k.name, k.shape]));
const config = (path: string) => JSON.parse(readFileSync(new URL(path, REF), 'utf8'));

const CASES: {
  name: string;
  family: SdFamily;
  ldm: string;
  unet: string;
  text: string;
  textConfig: string;
}[] = [
  {
    name: 'SD 1.5',
    family: 'sd1',
    ldm: 'single-file/sd15-ldm.keys.json',
    unet: 'sd15-unet',
    text: 'clip-vit-large-patch14-text',
    textConfig: 'clip-vit-large-patch14-text',
  },
  {
    name: 'SD 2.1',
    family: 'sd2',
    ldm: 'single-file/sd21-ldm.keys.json',
    unet: 'sd21-unet',
    text: 'sd21-text',
    textConfig: 'sd21-text',
  },
];

describe('single-file (LDM) key conversion on the real key lists', () => {
  for (const c of CASES) {
    const ldm = keys(c.ldm);
    const cfg: LdmConfigs = {
      unet: config(`keys/${c.unet}.config.json`),
      vae: config('keys/sd-vae.config.json'),
      textLayers: config(`keys/${c.textConfig}.config.json`).num_hidden_layers,
    };
    const want: Record<LdmComponent, Map<string, number[]>> = {
      unet: keys(`keys/${c.unet}.keys.json`),
      vae: keys('keys/sd-vae.keys.json'),
      text_encoder: keys(`keys/${c.text}.keys.json`),
    };

    it(`${c.name}: detected from the names and shapes`, () => {
      expect(detectFamily(ldm)?.family).toBe(c.family);
    });

    it(`${c.name}: every LDM name maps onto the diffusers key lists, with shapes (or is knowingly ignored)`, () => {
      const conv = convertLdm(ldm, c.family, cfg);
      // What diffusers' loader ignores, as the key list records it (SD 2.1: text block 23,
      // text_projection, logit_scale).
      const ignoredByDiffusers: string[] = keyFile(c.ldm).ignored_by_diffusers_loader ?? [];
      expect([...conv.ignored.keys()].sort()).toEqual([...ignoredByDiffusers].sort());
      const used = new Set<string>();
      for (const comp of ['unet', 'vae', 'text_encoder'] as const) {
        const got = conv.components[comp];
        expect([...got.keys()].sort(), comp).toEqual([...want[comp].keys()].sort());
        for (const [name, t] of got) {
          expect(t.shape, `${comp} ${name}`).toEqual(want[comp].get(name));
          used.add(t.source);
        }
      }
      for (const name of ldm.keys()) expect(used.has(name) || conv.ignored.has(name), name).toBe(true);
    });

    it(`${c.name}: diffusers → LDM → diffusers gives every name back`, () => {
      const back = new Map<string, number[]>();
      for (const comp of ['unet', 'vae', 'text_encoder'] as const) {
        for (const [name, shape] of want[comp]) {
          const l = diffusersToLdmName(comp, name, c.family, cfg);
          expect(ldm.has(l), `${comp} ${name} → ${l}`).toBe(true);
          // The LDM shape: VAE mid attention as 1×1 convs, SD 2 q/k/v stacked.
          const stacked = c.family === 'sd2' && /self_attn\.[qkv]_proj/.test(name);
          const conv1x1 = /mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(name);
          back.set(l, stacked ? [shape[0] * 3, ...shape.slice(1)] : conv1x1 ? [...shape, 1, 1] : shape);
        }
      }
      const conv = convertLdm(back, c.family, cfg);
      for (const comp of ['unet', 'vae', 'text_encoder'] as const) {
        expect([...conv.components[comp].keys()].sort()).toEqual([...want[comp].keys()].sort());
      }
      for (const [name, shape] of back) expect(ldm.get(name), name).toEqual(shape);
    });

    it(`${c.name}: schedule buffers, position ids and EMA copies are ignored; --ema takes the EMA UNet`, () => {
      const full = new Map(ldm);
      full.set('alphas_cumprod', [1000]);
      full.set('betas', [1000]);
      full.set('model_ema.decay', []);
      full.set('model_ema.num_updates', []);
      if (c.family === 'sd1') full.set('cond_stage_model.transformer.text_model.embeddings.position_ids', [1, 77]);
      for (const [name, shape] of ldm) if (name.startsWith('model.diffusion_model.')) full.set(emaName(name), shape);
      expect(full.has('model_ema.diffusion_modelinput_blocks11proj_inweight') || c.family === 'sd2').toBe(true);
      const plain = convertLdm(full, c.family, cfg);
      expect(plain.components.unet.get('conv_in.weight')!.source).toBe('model.diffusion_model.input_blocks.0.0.weight');
      expect(plain.ignored.get('alphas_cumprod')).toMatch(/schedule/);
      expect(plain.ignored.get(emaName('model.diffusion_model.out.2.weight'))).toMatch(/EMA copy/);
      const ema = convertLdm(full, c.family, cfg, { ema: true });
      expect(ema.components.unet.get('conv_in.weight')!.source).toBe('model_ema.diffusion_modelinput_blocks00weight');
      expect(ema.components.unet.size).toBe(want.unet.size);
      expect(() => convertLdm(ldm, c.family, cfg, { ema: true })).toThrow(/--ema asked for, but model_ema\./);
    });
  }

  it('refuses names of no known part, listing them', () => {
    const ldm = keys('single-file/sd15-ldm.keys.json');
    ldm.set('conditioner.embedders.0.transformer.text_model.final_layer_norm.weight', [768]);
    ldm.set('model.diffusion_model.label_emb.0.0.weight', [1280, 2816]);
    const cfg: LdmConfigs = {
      unet: config('keys/sd15-unet.config.json'),
      vae: config('keys/sd-vae.config.json'),
      textLayers: 12,
    };
    expect(() => convertLdm(ldm, 'sd1', cfg)).toThrow(
      /2 tensor names that no SD 1\.x part has under the configs used \(it looks like SDXL[^)]*\):\n {2}conditioner\.embedders[\s\S]*label_emb/,
    );
  });

  it('names inside a part that the configs do not place: an error listing the first 12, the count, and --config', () => {
    // SD 1.5 weights read with a config of one layer per block: every second block is unplaced.
    const ldm = keys('single-file/sd15-ldm.keys.json');
    const cfg: LdmConfigs = {
      unet: { ...config('keys/sd15-unet.config.json'), layers_per_block: 1 },
      vae: config('keys/sd-vae.config.json'),
      textLayers: 12,
    };
    let message = '';
    try {
      convertLdm(ldm, 'sd1', cfg);
    } catch (e) {
      message = (e as Error).message;
    }
    const m =
      /^single file: (\d+) tensor names that no SD 1\.x part has under the configs used \((.*)\):\n((?: {2}.*\n)+) {2}… and (\d+) more$/.exec(
        message,
      );
    expect(m, message).not.toBeNull();
    const listed = m![3].trim().split('\n  ');
    expect(listed.length).toBe(12);
    expect(Number(m![1])).toBe(12 + Number(m![4]));
    for (const n of listed) expect(ldm.has(n), n).toBe(true);
    expect(m![2]).toMatch(/--config <folder> in the CLI, or the model's config folder in the app's Model step/);
  });

  it('names outside every part are left out as extras (reported), not refused', () => {
    const ldm = keys('single-file/sd15-ldm.keys.json');
    ldm.set('embedding_manager.embedding_manager.string_to_param.*', [1, 768]);
    ldm.set('embedding_manager.string_to_token.*', [1]);
    ldm.set('lora_unet_down_blocks_0_attentions_0_proj_in.alpha', []);
    ldm.set('denoiser.sigmas', [1000]);
    const cfg: LdmConfigs = {
      unet: config('keys/sd15-unet.config.json'),
      vae: config('keys/sd-vae.config.json'),
      textLayers: 12,
    };
    const conv = convertLdm(ldm, 'sd1', cfg);
    expect(conv.extras.sort()).toEqual([
      'embedding_manager.embedding_manager.string_to_param.*',
      'embedding_manager.string_to_token.*',
      'lora_unet_down_blocks_0_attentions_0_proj_in.alpha',
    ]);
    expect(conv.ignored.get('denoiser.sigmas')).toMatch(/schedule/);
    expect(groupByPrefix(conv.extras)).toBe('embedding_manager.* (2), lora_unet_down_blocks_0_attentions_0_proj_in.*');
    expect(conv.components.unet.size).toBe(686);
  });
});
