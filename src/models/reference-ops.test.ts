// The float64 reference backend: the tiny-sd models on it against the outputs
// diffusers/transformers computed (../shared/data/reference/tiny-sd/goldens.json) — which
// validates the backend independently of the WGSL kernels — and its plain-loop ops.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '../packs/safetensors.ts';
import { assertClose } from '../../test/close.ts';
import { clipText, clipTokenEmbeddings } from './clip/clip-text.ts';
import type { ClipTextConfig, ClipVisionConfig } from './clip/clip-config.ts';
import { clipVision } from './clip/clip-vision.ts';
import type { LoraPair } from './lora.ts';
import { Params } from './params.ts';
import { ReferenceOps, ReferenceParams, refTensor, type RefTensor } from './reference-ops.ts';
import { unet } from './unet/unet.ts';
import { resolveUNetConfig } from './unet/unet-config.ts';
import type { VaeConfig } from './vae/vae-config.ts';
import { vaeDecode, vaeEncode } from './vae/vae.ts';

const TINY = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);
const json = (p: string) => JSON.parse(readFileSync(new URL(p, TINY), 'utf8'));
const st = (p: string) => parseSafetensors(new Uint8Array(readFileSync(new URL(p, TINY))));
type Arr = { shape: number[]; data: number[] };
const goldens = json('goldens.json');
const params = (file: string) => new Params(ReferenceParams.fromSafetensors([st(file)]));
const input = (a: Arr) => refTensor(a.data, a.shape);
const ref = (v: Arr | string): Arr => (typeof v === 'string' ? v.split('.').reduce((o, k) => o[k], goldens) : v);
const ids = (list: number[]) => ({ data: list, shape: [1, list.length] });
const positions = (n: number) => ids(Array.from({ length: n }, (_, i) => i));

// float64 vs fp32 PyTorch, relative to each output's largest magnitude: what remains is
// PyTorch's own fp32 rounding (measured ≤ 9e-7 of scale on every output here).
const TOL = { rtol: 5e-6, atol: 1e-7 };
// Timestep angles rounded to fp32 as PyTorch computes them (t = 500: up to 3e-5 rad apart).
const ops = new ReferenceOps({ fp32TimestepAngles: true });

describe('tiny-sd goldens on the float64 reference backend', () => {
  it('CLIP text encoder: last_hidden_state, uncond, and an inputs_embeds replacement', () => {
    const cfg: ClipTextConfig = json('text_encoder/config.json');
    const p = params('text_encoder/model.safetensors');
    const g = goldens.text_encoder;
    const emb = clipTokenEmbeddings(ops, p, cfg, ids(g.input_ids));
    assertClose(clipText(ops, p, cfg, emb, positions(g.input_ids.length)).data, g.last_hidden_state.data, TOL, 'last_hidden_state');
    const uncond = clipText(ops, p, cfg, clipTokenEmbeddings(ops, p, cfg, ids(g.uncond_input_ids)), positions(g.uncond_input_ids.length));
    assertClose(uncond.data, g.uncond_last_hidden_state.data, TOL, 'uncond_last_hidden_state');
    const variant = g.inputs_embeds_variant;
    const spliced = refTensor(emb.data, emb.shape);
    spliced.data.set(variant.replacement_vector.data, variant.replaced_position * cfg.hidden_size);
    assertClose(clipText(ops, p, cfg, spliced, positions(g.input_ids.length)).data, variant.last_hidden_state.data, TOL, 'inputs_embeds variant');
  });

  it('VAE encode (mean, logvar) and decode', () => {
    const cfg: VaeConfig = json('vae/config.json');
    const p = params('vae/diffusion_pytorch_model.safetensors');
    const g = goldens.vae;
    const { mean, logvar } = vaeEncode(ops, p, cfg, input(g.image));
    assertClose(mean.data, g.encode_latent_dist_mean.data, TOL, 'latent mean');
    assertClose(logvar.data, g.encode_latent_dist_logvar.data, TOL, 'latent logvar');
    assertClose(vaeDecode(ops, p, cfg, input(g.decode_input_latent)).data, g.decode_sample.data, TOL, 'decode');
  });

  it('UNet noise prediction, and with LoRA', () => {
    const cfg = resolveUNetConfig(json('unet/config.json'));
    const p = params('unet/diffusion_pytorch_model.safetensors');
    const g = goldens.unet;
    const cond = { context: input(ref(g.encoder_hidden_states)), lora: null, dual: null };
    const eps = unet(ops, p, cfg, { sample: input(g.latent), timesteps: [g.timestep], cond });
    assertClose(eps.data, g.noise_pred.data, TOL, 'noise_pred');
    const gl = goldens.unet_lora;
    const lf = st(gl.tensors_file);
    const layers = new Map<string, LoraPair<RefTensor>>();
    for (const name of lf.names()) {
      const m = /^unet\.(.+)\.lora_([AB])\.weight$/.exec(name);
      if (!m) continue;
      const pair = layers.get(m[1]) ?? ({} as LoraPair<RefTensor>);
      pair[m[2] as 'A' | 'B'] = refTensor(lf.float32(name), lf.info(name).shape);
      layers.set(m[1], pair);
    }
    const withLora = unet(ops, p, cfg, {
      sample: input(ref(gl.latent)),
      timesteps: [gl.timestep],
      cond: { context: input(ref(gl.encoder_hidden_states)), lora: { layers, scale: gl.scale }, dual: null },
    });
    assertClose(withLora.data, gl.noise_pred.data, TOL, 'noise_pred with LoRA');
  });

  it('CLIP vision tower: last_hidden_state and image_embeds', () => {
    const cfg: ClipVisionConfig = json('image_encoder/config.json');
    const p = params('image_encoder/model.safetensors');
    const g = goldens.image_encoder;
    const o = clipVision(ops, p, cfg, input(g.pixel_values));
    assertClose(o.lastHiddenState.data, g.last_hidden_state.data, TOL, 'last_hidden_state');
    assertClose(o.imageEmbeds.data, g.image_embeds.data, TOL, 'image_embeds');
  });
});

describe('ReferenceOps plain-loop and layout ops', () => {
  const r = new ReferenceOps();
  const t = (data: number[], shape: number[]) => refTensor(data, shape);

  it('broadcasts (add, sub, mul, broadcastTo) numpy-style', () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const col = t([10, 20], [2, 1]);
    expect([...r.add(a, col).data]).toEqual([11, 12, 13, 24, 25, 26]);
    expect([...r.sub(t([1, 2, 3], [3]), a).data]).toEqual([0, 0, 0, -3, -3, -3]);
    expect([...r.mul(a, t([2], [1])).data]).toEqual([2, 4, 6, 8, 10, 12]);
    const b = r.broadcastTo(t([1, 2], [2, 1]), [3, 2, 2]);
    expect(b.shape).toEqual([3, 2, 2]);
    expect([...b.data]).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
    expect(() => r.broadcastTo(a, [3, 3])).toThrow(/broadcast/);
    expect(() => r.add(a, t([1, 2], [2]))).toThrow(/broadcast/);
  });

  it('reshape (with -1) copies, transpose, concat/slice with negative axes, mean', () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = r.reshape(a, [3, -1]);
    expect(v.shape).toEqual([3, 2]);
    v.data[0] = 99;
    expect(a.data[0]).toBe(1);
    expect([...r.transpose(a, [1, 0]).data]).toEqual([1, 4, 2, 5, 3, 6]);
    const c = r.concat([a, t([7, 8], [2, 1])], -1);
    expect(c.shape).toEqual([2, 4]);
    expect([...c.data]).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
    expect([...r.slice(c, -1, 1, 2).data]).toEqual([2, 3, 5, 6]);
    expect([...r.mean(a, [1]).data]).toEqual([2, 5]);
    expect(r.mean(a, [0], true).shape).toEqual([1, 3]);
    expect(() => r.reshape(a, [4, -1])).toThrow(/reshape/);
    expect(() => r.slice(a, 1, 2, 2)).toThrow(/slice/);
  });

  it('matmul follows the engine contract (equal batch dims or a shared 2-D operand)', () => {
    const a = t([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const w = t([1, 0, 0, 2], [2, 2]);
    expect([...r.matmul(a, w).data]).toEqual([1, 4, 3, 8, 5, 12, 7, 16]);
    expect(() => r.matmul(a, t(new Array(12).fill(0), [3, 2, 2]))).toThrow(/batch/);
  });

  it('rejects out-of-range token ids and unknown or misshapen parameters', () => {
    const table = t([0, 1, 2, 3], [2, 2]);
    expect([...r.embedding({ data: [1, 0], shape: [2] }, table).data]).toEqual([2, 3, 0, 1]);
    expect(() => r.embedding({ data: [2], shape: [1] }, table)).toThrow(/outside/);
    const p = new ReferenceParams(new Map([['w', table]]));
    expect(p.get('w', [2, 2])).toBe(table);
    expect(() => p.get('w', [4])).toThrow(/shape/);
    expect(() => p.get('x', [1])).toThrow(/missing/);
  });
});
