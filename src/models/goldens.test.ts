// The models on the engine backend against the outputs diffusers/transformers computed for
// the tiny-sd checkpoint (../shared/data/reference/tiny-sd/goldens.json).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { parseSafetensors } from '../packs/safetensors.ts';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { clipText, clipTokenEmbeddings } from './clip/clip-text.ts';
import { clipVision } from './clip/clip-vision.ts';
import { EngineOps } from './engine-ops.ts';
import { SafetensorsParams } from './engine-params.ts';
import type { LoraPair } from './lora.ts';
import { Params } from './params.ts';
import { unet } from './unet/unet.ts';
import { resolveUNetConfig } from './unet/unet-config.ts';
import { vaeDecode, vaeEncode } from './vae/vae.ts';

const TINY = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);
const json = (p: string) => JSON.parse(readFileSync(new URL(p, TINY), 'utf8'));
const st = (p: string) => parseSafetensors(new Uint8Array(readFileSync(new URL(p, TINY))));
type Arr = { shape: number[]; data: number[] };
const goldens = json('goldens.json');

// fp32 GPU vs fp32 PyTorch, relative to each output's largest magnitude.
const TOL = { rtol: 1e-4, atol: 1e-5 };

let engine: Engine;
let ops: EngineOps;
const loaded: SafetensorsParams[] = [];
const params = (file: string) => {
  const p = new SafetensorsParams(engine, [st(file)]);
  loaded.push(p);
  return new Params(p);
};
const input = (a: Arr): Tensor => engine.tensor(a.data, a.shape);
/** Goldens refer to inputs stored elsewhere by dotted path, e.g. "text_encoder.last_hidden_state". */
const ref = (v: Arr | string): Arr => (typeof v === 'string' ? v.split('.').reduce((o, k) => o[k], goldens) : v);
const ids = (list: number[]) => ({ data: Int32Array.from(list), shape: [1, list.length] });
const positions = (n: number) => ids(Array.from({ length: n }, (_, i) => i));

beforeAll(async () => {
  engine = await testEngine();
  ops = new EngineOps(engine);
});
afterAll(() => loaded.forEach((p) => p.dispose()));

describe('tiny-sd goldens on the engine', () => {
  it('CLIP text encoder: last_hidden_state, and with an inputs_embeds replacement', async () => {
    const cfg = json('text_encoder/config.json');
    const p = params('text_encoder/model.safetensors');
    const g = goldens.text_encoder;
    await engine.scopeAsync(async () => {
      const emb = clipTokenEmbeddings(ops, p, cfg, ids(g.input_ids));
      const out = clipText(ops, p, cfg, emb, positions(g.input_ids.length));
      assertClose(await out.read(), g.last_hidden_state.data, TOL, 'last_hidden_state');
      const uncond = clipText(ops, p, cfg, clipTokenEmbeddings(ops, p, cfg, ids(g.uncond_input_ids)), positions(g.uncond_input_ids.length));
      assertClose(await uncond.read(), g.uncond_last_hidden_state.data, TOL, 'uncond_last_hidden_state');
      // v* spliced at the golden's position (the token it names) as the personalization path does it
      const variant = g.inputs_embeds_variant;
      expect(g.input_ids[variant.replaced_position]).toBe(variant.replaced_token_id);
      const data = await emb.read();
      data.set(variant.replacement_vector.data, variant.replaced_position * cfg.hidden_size);
      const outV = clipText(ops, p, cfg, engine.tensor(data, emb.shape), positions(g.input_ids.length));
      assertClose(await outV.read(), variant.last_hidden_state.data, TOL, 'inputs_embeds variant');
    });
  });

  it('UNet noise prediction, and with LoRA', async () => {
    const cfg = resolveUNetConfig(json('unet/config.json'));
    const p = params('unet/diffusion_pytorch_model.safetensors');
    const g = goldens.unet;
    await engine.scopeAsync(async () => {
      const cond = { context: input(ref(g.encoder_hidden_states)), lora: null, dual: null };
      const eps = unet(ops, p, cfg, { sample: input(g.latent), timesteps: [g.timestep], cond });
      assertClose(await eps.read(), g.noise_pred.data, TOL, 'noise_pred');
      const variantContext = input(goldens.text_encoder.inputs_embeds_variant.last_hidden_state);
      const epsV = unet(ops, p, cfg, { sample: input(g.latent), timesteps: [g.timestep], cond: { ...cond, context: variantContext } });
      assertClose(await epsV.read(), g.noise_pred_with_inputs_embeds_variant.data, TOL, 'noise_pred with the v* variant');
      const gl = goldens.unet_lora;
      const lf = st(gl.tensors_file);
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const name of lf.names()) {
        const m = /^unet\.(.+)\.lora_([AB])\.weight$/.exec(name);
        if (!m) continue;
        const pair = layers.get(m[1]) ?? ({} as LoraPair<Tensor>);
        pair[m[2] as 'A' | 'B'] = engine.tensor(lf.float32(name), lf.info(name).shape);
        layers.set(m[1], pair);
      }
      const withLora = unet(ops, p, cfg, {
        sample: input(ref(gl.latent)),
        timesteps: [gl.timestep],
        cond: { context: input(ref(gl.encoder_hidden_states)), lora: { layers, scale: gl.scale }, dual: null },
      });
      assertClose(await withLora.read(), gl.noise_pred.data, TOL, 'noise_pred with LoRA');
    });
  });

  it('VAE encode (mean, logvar) and decode', async () => {
    const cfg = json('vae/config.json');
    const p = params('vae/diffusion_pytorch_model.safetensors');
    const g = goldens.vae;
    await engine.scopeAsync(async () => {
      const { mean, logvar } = vaeEncode(ops, p, cfg, input(g.image));
      assertClose(await mean.read(), g.encode_latent_dist_mean.data, TOL, 'latent mean');
      assertClose(await logvar.read(), g.encode_latent_dist_logvar.data, TOL, 'latent logvar');
      assertClose(await vaeDecode(ops, p, cfg, input(g.decode_input_latent)).read(), g.decode_sample.data, TOL, 'decode');
    });
  });

  it('CLIP vision tower: last_hidden_state and image_embeds', async () => {
    const cfg = json('image_encoder/config.json');
    const p = params('image_encoder/model.safetensors');
    const g = goldens.image_encoder;
    await engine.scopeAsync(async () => {
      const out = clipVision(ops, p, cfg, input(g.pixel_values));
      assertClose(await out.lastHiddenState.read(), g.last_hidden_state.data, TOL, 'last_hidden_state');
      assertClose(await out.imageEmbeds.read(), g.image_embeds.data, TOL, 'image_embeds');
    });
  });
});

