// The exported graphs on onnxruntime-web's WebGPU EP (dawn.node, software Vulkan here) with
// CPU fallback disabled, so every node must have a WebGPU kernel; and the dual path at a
// blend strictly between 0 and 1 — which no golden covers, because blending happens inside
// every transformer block — against the engine running the same model code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { EngineOps } from '../models/engine-ops.ts';
import { SafetensorsParams } from '../models/engine-params.ts';
import type { LoraPair } from '../models/lora.ts';
import { Params } from '../models/params.ts';
import { unet } from '../models/unet/unet.ts';
import { resolveUNetConfig } from '../models/unet/unet-config.ts';
import { exportModelGraphs, type ExportedGraph, type GraphName } from './export-graphs.ts';
import { encodeModel } from './onnx-proto.ts';
import { OrtSession, type OrtArray, type OrtIntArray } from './ort.ts';
import {
  externalFiles,
  feed,
  goldens,
  loraFeeds,
  positionIds,
  scalarFeed,
  tinyFiles,
  tinySource,
  tokenEmbeddings,
} from './tiny-sd-fixture.ts';

// fp32 on both sides; the WebGPU EP's summation orders differ from PyTorch's (measured ≤ 2.1e-5
// relative, the largest in the UNet).
const TOL = { rtol: 1e-4, atol: 1e-5 };

const src = tinySource();
const graphs = new Map<GraphName, ExportedGraph>(exportModelGraphs(src).map((g) => [g.name, g]));
const te = goldens.text_encoder;
const C = feed(te.last_hidden_state);
const Cuncond = feed(te.uncond_last_hidden_state);
const BLEND = 0.25;
const personalizedFeeds = {
  sample: feed(goldens.unet.latent),
  timestep: scalarFeed(goldens.unet.timestep),
  encoder_hidden_states: C,
  hard_encoder_hidden_states: Cuncond,
  blend: scalarFeed(BLEND),
  ...loraFeeds(),
};

async function run(name: GraphName, backend: 'webgpu' | 'wasm', feeds: Record<string, OrtArray | OrtIntArray>) {
  const g = graphs.get(name)!;
  const session = await OrtSession.create(encodeModel(g.model), {
    backend,
    gpuOnly: backend === 'webgpu',
    externalData: externalFiles(g.externalData),
  });
  try {
    expect(session.backend).toBe(backend);
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

let engine: Engine;
let params: SafetensorsParams;

beforeAll(async () => {
  engine = await testEngine();
  params = new SafetensorsParams(engine, [tinyFiles.get(src.unet!.weights.location)!]);
});
afterAll(() => params?.dispose());

describe('exported graphs on the WebGPU EP (no CPU fallback)', () => {
  it('text encoder, UNet, VAE encoder/decoder and image encoder match the goldens', async () => {
    const ids = te.input_ids as number[];
    const text = await run('text_encoder', 'webgpu', {
      inputs_embeds: { data: tokenEmbeddings(ids), dims: te.last_hidden_state.shape },
      position_ids: positionIds(ids.length),
    });
    assertClose(text.last_hidden_state.data, te.last_hidden_state.data, TOL, 'text encoder');
    const eps = await run('unet', 'webgpu', {
      sample: feed(goldens.unet.latent),
      timestep: scalarFeed(goldens.unet.timestep),
      encoder_hidden_states: C,
    });
    assertClose(eps.noise_pred.data, goldens.unet.noise_pred.data, TOL, 'unet');
    const enc = await run('vae_encoder', 'webgpu', { image: feed(goldens.vae.image) });
    assertClose(enc.latent_mean.data, goldens.vae.encode_latent_dist_mean.data, TOL, 'vae latent mean');
    const dec = await run('vae_decoder', 'webgpu', { latent: feed(goldens.vae.decode_input_latent) });
    assertClose(dec.image.data, goldens.vae.decode_sample.data, TOL, 'vae decode');
    const img = await run('image_encoder', 'webgpu', { pixel_values: feed(goldens.image_encoder.pixel_values) });
    assertClose(img.image_embeds.data, goldens.image_encoder.image_embeds.data, TOL, 'image embeds');
  });

  it(`personalized UNet at blend ${BLEND}: WebGPU EP = wasm EP = the engine running the same model code`, async () => {
    // The engine: same model function, same weights, LoRA as tensors, α as a number.
    const cfg = resolveUNetConfig(src.unet!.config);
    const ops = new EngineOps(engine);
    const expected = await engine.scopeAsync(async () => {
      const t = (a: OrtArray) => engine.tensor(a.data, a.dims);
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const [name, a] of Object.entries(loraFeeds())) {
        const [, module, which] = /^lora\.(.+)\.([AB])$/.exec(name)!;
        const pair = layers.get(module) ?? ({} as LoraPair<Tensor>);
        pair[which as 'A' | 'B'] = t(a);
        layers.set(module, pair);
      }
      const eps = unet(ops, new Params(params), cfg, {
        sample: t(personalizedFeeds.sample),
        timesteps: [goldens.unet.timestep],
        cond: {
          context: t(C),
          lora: { layers, scale: goldens.unet_lora.scale },
          dual: { hardContext: t(Cuncond), alpha: BLEND },
        },
      });
      return eps.read();
    });
    const wasm = await run('unet_personalized', 'wasm', personalizedFeeds);
    const gpu = await run('unet_personalized', 'webgpu', personalizedFeeds);
    assertClose(wasm.noise_pred.data, expected, TOL, 'wasm EP vs engine');
    assertClose(gpu.noise_pred.data, expected, TOL, 'WebGPU EP vs engine');
    // Not trivially one of the end points: differs from both the vanilla and the LoRA output.
    const far = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
    expect(far(wasm.noise_pred.data, goldens.unet_lora.noise_pred.data)).toBeGreaterThan(1e-3);
    expect(far(wasm.noise_pred.data, goldens.unet.noise_pred.data)).toBeGreaterThan(1e-3);
  });
});
