// The tiny-sd goldens (fp32 PyTorch) with the linear and conv weights held as fp16 on the GPU
// (rounded from the fp32 checkpoint), read with shader-f16 and — on a device without it — as
// packed pairs. Activations and accumulation stay f32, so the only difference from the fp32
// run (goldens.test.ts) is the weights' rounding to fp16 (relative 2⁻¹¹ each).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../engine/engine.ts';
import { parseSafetensors } from '../packs/safetensors.ts';
import { assertClose, difference } from '../../test/close.ts';
import { testEngine, testEngineWithoutF16 } from '../../test/engine.ts';
import { clipText, clipTokenEmbeddings } from './clip/clip-text.ts';
import { clipVision } from './clip/clip-vision.ts';
import { EngineOps } from './engine-ops.ts';
import { frozenWeightsF16, SafetensorsParams } from './engine-params.ts';
import { Params } from './params.ts';
import { unet } from './unet/unet.ts';
import { resolveUNetConfig } from './unet/unet-config.ts';
import { vaeDecode, vaeEncode } from './vae/vae.ts';

const TINY = new URL('../../../shared/data/reference/tiny-sd/', import.meta.url);
const json = (p: string) => JSON.parse(readFileSync(new URL(p, TINY), 'utf8'));
const st = (p: string) => parseSafetensors(new Uint8Array(readFileSync(new URL(p, TINY))));
type Arr = { shape: number[]; data: number[] };
const goldens = json('goldens.json');
const ref = (v: Arr | string): Arr => (typeof v === 'string' ? v.split('.').reduce((o, k) => o[k], goldens) : v);
const ids = (list: number[]) => ({ data: Int32Array.from(list), shape: [1, list.length] });
const positions = (n: number) => ids(Array.from({ length: n }, (_, i) => i));

// fp16 tolerance, relative to each output's largest magnitude. Measured on lavapipe: VAE
// decode 1.3e-3, UNet 9e-4, text 4e-4, vision 3e-4 (identical with packed pairs); 5e-3
// leaves room for other summation orders and still fails on a real bug (a wrong element or
// a misread half is O(1) off).
const F16_TOL = { rtol: 5e-3, atol: 1e-4 };

async function run(engine: Engine, file: string, fn: (p: Params<import('../engine/tensor.ts').Tensor>, ops: EngineOps) => Promise<void>) {
  const source = new SafetensorsParams(engine, [st(file)], { f16: frozenWeightsF16, f32ToF16: true });
  try {
    await engine.scopeAsync(() => fn(new Params(source), new EngineOps(engine)));
    expect(source.residentBytes).toBeGreaterThan(0);
  } finally {
    source.dispose();
  }
}

const engines: [string, () => Promise<Engine>][] = [
  ['shader-f16', testEngine],
  ['packed pairs', testEngineWithoutF16],
];

describe('tiny-sd goldens with fp16 weights', () => {
  for (const [name, make] of engines) {
    it(`CLIP text encoder and UNet (${name})`, async (ctx) => {
      const engine = await make();
      ctx.skip(name === 'shader-f16' && !engine.f16, 'adapter lacks shader-f16');
      const g = goldens.text_encoder;
      const cfg = json('text_encoder/config.json');
      await run(engine, 'text_encoder/model.safetensors', async (p, ops) => {
        expect(p.get('text_model.encoder.layers.0.self_attn.q_proj.weight', [cfg.hidden_size, cfg.hidden_size]).dtype).toBe('f16');
        const out = clipText(ops, p, cfg, clipTokenEmbeddings(ops, p, cfg, ids(g.input_ids)), positions(g.input_ids.length));
        const got = await out.read();
        assertClose(got, g.last_hidden_state.data, F16_TOL, `last_hidden_state (${name})`);
        report('text', got, g.last_hidden_state.data);
      });
      const gu = goldens.unet;
      await run(engine, 'unet/diffusion_pytorch_model.safetensors', async (p, ops) => {
        const cfgU = resolveUNetConfig(json('unet/config.json'));
        const cond = { context: engine.tensor(ref(gu.encoder_hidden_states).data, ref(gu.encoder_hidden_states).shape), lora: null, dual: null };
        const eps = unet(ops, p, cfgU, { sample: engine.tensor(gu.latent.data, gu.latent.shape), timesteps: [gu.timestep], cond });
        const got = await eps.read();
        assertClose(got, gu.noise_pred.data, F16_TOL, `noise_pred (${name})`);
        report('unet', got, gu.noise_pred.data);
      });
    });
  }

  it('VAE decode and CLIP vision tower (shader-f16, or packed pairs where the adapter lacks it)', async () => {
    const engine = await testEngine();
    const gv = goldens.vae;
    await run(engine, 'vae/diffusion_pytorch_model.safetensors', async (p, ops) => {
      const got = await vaeDecode(ops, p, json('vae/config.json'), engine.tensor(gv.decode_input_latent.data, gv.decode_input_latent.shape)).read();
      assertClose(got, gv.decode_sample.data, F16_TOL, 'decode');
      report('vae decode', got, gv.decode_sample.data);
    });
    const gi = goldens.image_encoder;
    await run(engine, 'image_encoder/model.safetensors', async (p, ops) => {
      const out = clipVision(ops, p, json('image_encoder/config.json'), engine.tensor(gi.pixel_values.data, gi.pixel_values.shape));
      const got = await out.imageEmbeds.read();
      assertClose(got, gi.image_embeds.data, F16_TOL, 'image_embeds');
      report('vision', got, gi.image_embeds.data);
    });
  });
});

// fp16 activations (inference, shader-f16 only) on top of fp16 weights: every activation the
// UNet and the VAE store is rounded to fp16 (2⁻¹¹ relative per store, a few dozen stores deep),
// all sums and statistics stay f32. Measured on lavapipe (relative to each output's largest
// magnitude): UNet 1.9e-3, VAE decode 1.6e-3, VAE encode 7.9e-4; 6e-3 leaves 3× room and still
// fails on a misread half or a wrong element (O(1) of scale off).
const HALF_TOL = { rtol: 6e-3, atol: 1e-4 };

describe('tiny-sd goldens with fp16 weights and fp16 activations', () => {
  it('UNet, VAE decode and encode within the stated tolerance; with gradients on, fp32 as before', async (ctx) => {
    const engine = await testEngine();
    ctx.skip(!engine.f16, 'adapter lacks shader-f16');
    const gu = goldens.unet;
    const cfgU = resolveUNetConfig(json('unet/config.json'));
    await run(engine, 'unet/diffusion_pytorch_model.safetensors', async (p) => {
      const half = new EngineOps(engine, { halfActivations: true });
      const inputs = () => ({
        sample: engine.tensor(gu.latent.data, gu.latent.shape),
        timesteps: [gu.timestep],
        cond: { context: engine.tensor(ref(gu.encoder_hidden_states).data, ref(gu.encoder_hidden_states).shape), lora: null, dual: null },
      });
      const eps = engine.noGrad(() => unet(half, p, cfgU, inputs()));
      expect(eps.dtype).toBe('f32');
      const got = await eps.read();
      assertClose(got, gu.noise_pred.data, HALF_TOL, 'noise_pred (fp16 activations)');
      report('unet, fp16 activations', got, gu.noise_pred.data);
      // Gradients on: the same ops keep fp32 activations, so the output is the fp32 run's, bit for bit.
      const withGrad = await unet(half, p, cfgU, inputs()).read();
      const plain = await unet(new EngineOps(engine), p, cfgU, inputs()).read();
      expect(Array.from(withGrad)).toEqual(Array.from(plain));
      engine.clearTape();
    });
    const gv = goldens.vae;
    await run(engine, 'vae/diffusion_pytorch_model.safetensors', async (p) => {
      const half = new EngineOps(engine, { halfActivations: true });
      const cfgV = json('vae/config.json');
      const got = await engine
        .noGrad(() => vaeDecode(half, p, cfgV, engine.tensor(gv.decode_input_latent.data, gv.decode_input_latent.shape)))
        .read();
      assertClose(got, gv.decode_sample.data, HALF_TOL, 'decode (fp16 activations)');
      report('vae decode, fp16 activations', got, gv.decode_sample.data);
      const mean = await engine.noGrad(() => vaeEncode(half, p, cfgV, engine.tensor(gv.image.data, gv.image.shape)).mean).read();
      assertClose(mean, gv.encode_latent_dist_mean.data, HALF_TOL, 'encode mean (fp16 activations)');
      report('vae encode, fp16 activations', mean, gv.encode_latent_dist_mean.data);
    });
  });
});

// The measured error, for the tolerance comment above (visible with --reporter=verbose).
function report(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  const d = difference(got, want);
  console.log(`fp16 weights, ${what}: max |Δ| ${d.maxAbs.toExponential(2)} = ${(d.maxAbs / d.scale).toExponential(2)} of scale`);
}
