// Every exported graph of the tiny-sd checkpoint, run by onnxruntime-web (wasm EP) with its
// initializers read straight out of the safetensors files, against the outputs diffusers /
// transformers computed (goldens.json); the personalized UNet's dual path at α = 0 and 1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { roundToF16 } from '../engine/dtype.ts';
import { parseSafetensorsHeader, writeSafetensors, type SafetensorsHeader } from '../packs/safetensors.ts';
import {
  exportModelGraphs,
  exportPackGraphs,
  exportPersonalizedUNet,
  exportTextEncoder,
  readDiffusersFolder,
  type ExportedGraph,
  type GraphName,
} from './export-graphs.ts';
import { encodeModel, OnnxDataType } from './onnx-proto.ts';
import { OrtSession, type OrtArray, type OrtExternalFile, type OrtIntArray } from './ort.ts';
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
  TINY_SD,
} from './tiny-sd-fixture.ts';

// fp32 ORT vs fp32 PyTorch, relative to each output's largest magnitude (measured: ≤ 1.5e-6).
const TOL = { rtol: 1e-4, atol: 1e-5 };

const graphs = new Map<GraphName, ExportedGraph>(exportModelGraphs(tinySource()).map((g) => [g.name, g]));
const graph = (name: GraphName) => graphs.get(name)!;

async function run(
  g: ExportedGraph,
  feeds: Record<string, OrtArray | OrtIntArray>,
  files: OrtExternalFile[] = externalFiles(g.externalData),
) {
  const session = await OrtSession.create(encodeModel(g.model), { backend: 'wasm', externalData: files });
  try {
    expect(session.inputNames).toEqual(g.inputs.map((i) => i.name));
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const te = goldens.text_encoder;
// Sizes come from the goldens' own arrays and configs, never restated here.
const [, N, hidden] = te.last_hidden_state.shape as number[];
const embeds = (ids: number[]): OrtArray => ({ data: tokenEmbeddings(ids), dims: [1, ids.length, hidden] });
const unetFeeds = (context: OrtArray) => ({
  sample: feed(goldens.unet.latent),
  timestep: scalarFeed(goldens.unet.timestep),
  encoder_hidden_states: context,
});
const C = feed(te.last_hidden_state);
const Cuncond = feed(te.uncond_last_hidden_state);

describe('exported graphs of tiny-sd on onnxruntime-web (wasm) vs diffusers/transformers goldens', () => {
  it('declare the documented inputs and outputs, with weights only as external data', () => {
    const io = (name: GraphName) => {
      const g = graph(name);
      return [g.inputs.map((i) => `${i.name}[${i.shape}]`), g.outputs.map((o) => `${o.name}[${o.shape}]`)];
    };
    const at = (name: string, a: { shape: number[] }) => `${name}[${a.shape}]`;
    const { unet: gu, vae: gv, image_encoder: gi } = goldens;
    const context = at('encoder_hidden_states', te.last_hidden_state);
    expect(io('text_encoder')).toEqual([
      [at('inputs_embeds', te.last_hidden_state), `position_ids[1,${N}]`],
      [at('last_hidden_state', te.last_hidden_state)],
    ]);
    expect(io('unet')).toEqual([[at('sample', gu.latent), 'timestep[1]', context], [at('noise_pred', gu.noise_pred)]]);
    expect(io('vae_encoder')).toEqual([
      [at('image', gv.image)],
      [at('latent_mean', gv.encode_latent_dist_mean), at('latent_logvar', gv.encode_latent_dist_logvar)],
    ]);
    expect(io('vae_decoder')).toEqual([[at('latent', gv.decode_input_latent)], [at('image', gv.decode_sample)]]);
    expect(io('image_encoder')).toEqual([
      [at('pixel_values', gi.pixel_values)],
      [at('last_hidden_state', gi.last_hidden_state), at('image_embeds', gi.image_embeds)],
    ]);
    const p = graph('unet_personalized');
    const { rank, num_lora_modules: modules } = goldens.unet_lora;
    const unetConfig = goldens.meta.configs.unet;
    expect(p.inputs.slice(0, 5).map((i) => i.name)).toEqual([
      'sample',
      'timestep',
      'encoder_hidden_states',
      'hard_encoder_hidden_states',
      'blend',
    ]);
    expect(p.loraTargets).toHaveLength(modules);
    expect(p.inputs).toHaveLength(5 + 2 * modules);
    expect(
      p.inputs.find((i) => i.name === 'lora.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.A')?.shape,
    ).toEqual([rank, unetConfig.cross_attention_dim]);
    expect(
      p.inputs.find((i) => i.name === 'lora.mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.B')?.shape,
    ).toEqual([unetConfig.block_out_channels.at(-1), rank]);
    // every weight of the checkpoint is external; inline data is only small constants
    const u = graph('unet').model.graph.initializers!;
    expect(u.filter((i) => i.external)).toHaveLength(
      tinyFiles.get('unet/diffusion_pytorch_model.safetensors')!.names().length,
    );
    expect(u.filter((i) => i.data).every((i) => i.data!.byteLength <= 64 * 1024)).toBe(true);
    expect(graph('unet').externalData).toEqual(['unet/diffusion_pytorch_model.safetensors']);
  });

  it('text encoder: last_hidden_state, the uncond prompt, and v* spliced into inputs_embeds', async () => {
    const g = graph('text_encoder');
    const out = await run(g, { inputs_embeds: embeds(te.input_ids), position_ids: positionIds(N) });
    assertClose(out.last_hidden_state.data, te.last_hidden_state.data, TOL, 'last_hidden_state');
    const uncond = await run(g, { inputs_embeds: embeds(te.uncond_input_ids), position_ids: positionIds(N) });
    assertClose(uncond.last_hidden_state.data, te.uncond_last_hidden_state.data, TOL, 'uncond');
    const variant = te.inputs_embeds_variant;
    const spliced = tokenEmbeddings(te.input_ids);
    spliced.set(variant.replacement_vector.data, variant.replaced_position * hidden);
    const v = await run(g, {
      inputs_embeds: { data: spliced, dims: te.last_hidden_state.shape },
      position_ids: positionIds(N),
    });
    assertClose(v.last_hidden_state.data, variant.last_hidden_state.data, TOL, 'inputs_embeds variant');
  });

  it('text encoder with com.microsoft MultiHeadAttention (causal via attention_bias) also matches', async () => {
    const src = tinySource().textEncoder!;
    const g = exportTextEncoder(src.config, src.weights, { attention: 'mha' });
    const out = await run(g, { inputs_embeds: embeds(te.input_ids), position_ids: positionIds(N) });
    assertClose(out.last_hidden_state.data, te.last_hidden_state.data, TOL, 'last_hidden_state (MHA)');
  });

  it('UNet noise prediction (also with the inputs_embeds-variant conditioning)', async () => {
    const out = await run(graph('unet'), unetFeeds(C));
    assertClose(out.noise_pred.data, goldens.unet.noise_pred.data, TOL, 'noise_pred');
    const v = await run(graph('unet'), unetFeeds(feed(te.inputs_embeds_variant.last_hidden_state)));
    assertClose(v.noise_pred.data, goldens.unet.noise_pred_with_inputs_embeds_variant.data, TOL, 'noise_pred, variant');
  });

  it('personalized UNet: blend 1 = the LoRA model (PEFT goldens); blend 0 = the vanilla UNet on C_h', async () => {
    const g = graph('unet_personalized');
    const lora = loraFeeds();
    expect(Object.keys(lora)).toHaveLength(64);
    // blend 1: only B(f, C, ΔW) counts; C_h is deliberately a different prompt
    const one = await run(g, { ...unetFeeds(C), hard_encoder_hidden_states: Cuncond, blend: scalarFeed(1), ...lora });
    assertClose(one.noise_pred.data, goldens.unet_lora.noise_pred.data, TOL, 'blend 1 vs PEFT LoRA');
    // blend 0: only B(f, C_h, ∅) counts; the LoRA and C must have no effect
    const zero = await run(g, { ...unetFeeds(Cuncond), hard_encoder_hidden_states: C, blend: scalarFeed(0), ...lora });
    assertClose(zero.noise_pred.data, goldens.unet.noise_pred.data, TOL, 'blend 0 vs vanilla UNet on C_h');
  });

  it('VAE encode (mean, logvar) and decode', async () => {
    const enc = await run(graph('vae_encoder'), { image: feed(goldens.vae.image) });
    assertClose(enc.latent_mean.data, goldens.vae.encode_latent_dist_mean.data, TOL, 'latent mean');
    assertClose(enc.latent_logvar.data, goldens.vae.encode_latent_dist_logvar.data, TOL, 'latent logvar');
    const dec = await run(graph('vae_decoder'), { latent: feed(goldens.vae.decode_input_latent) });
    assertClose(dec.image.data, goldens.vae.decode_sample.data, TOL, 'decode');
  });

  it('CLIP image encoder: last_hidden_state and image_embeds', async () => {
    const out = await run(graph('image_encoder'), { pixel_values: feed(goldens.image_encoder.pixel_values) });
    assertClose(out.last_hidden_state.data, goldens.image_encoder.last_hidden_state.data, TOL, 'last_hidden_state');
    assertClose(out.image_embeds.data, goldens.image_encoder.image_embeds.data, TOL, 'image_embeds');
  });

  it('batch 2 (classifier-free guidance in one run) gives each sample its own result', async () => {
    const g = exportModelGraphs(tinySource(), { graphs: ['unet'], batch: 2 })[0];
    const cat = (a: OrtArray, b: OrtArray): OrtArray => ({
      data: Float32Array.of(...a.data, ...b.data),
      dims: [2, ...a.dims.slice(1)],
    });
    const latent = feed(goldens.unet.latent);
    const t = goldens.unet.timestep;
    const out = await run(g, {
      sample: cat(latent, latent),
      timestep: { data: Float32Array.of(t, t), dims: [2] },
      encoder_hidden_states: cat(Cuncond, C),
    });
    expect(out.noise_pred.dims).toEqual([2, ...goldens.unet.noise_pred.shape.slice(1)]);
    assertClose(
      out.noise_pred.data.subarray(goldens.unet.noise_pred.data.length),
      goldens.unet.noise_pred.data,
      TOL,
      'cond half',
    );
  });

  it('fp16 weights (F16 initializers + Cast) equal fp32 weights holding the same rounded values', async () => {
    // The VAE decoder re-saved as F16, and as F32 with the fp16-rounded values.
    const src = tinySource();
    const file = tinyFiles.get(src.vae!.weights.location)!;
    const as = (dtype: 'F16' | 'F32') =>
      writeSafetensors(
        file.names().map((name) => ({
          name,
          dtype,
          shape: file.info(name).shape,
          data: dtype === 'F16' ? file.float32(name) : roundToF16(file.float32(name)),
        })),
      );
    const f16 = as('F16');
    const f32 = as('F32');
    const decode = async (bytes: Uint8Array) => {
      const [g] = exportModelGraphs(
        {
          ...src,
          vae: {
            config: src.vae!.config,
            weights: { header: parseSafetensorsHeader(bytes, { fileSize: bytes.length }), location: 'vae.safetensors' },
          },
        },
        { graphs: ['vae_decoder'] },
      );
      return {
        g,
        out: await run(g, { latent: feed(goldens.vae.decode_input_latent) }, [
          { path: 'vae.safetensors', data: bytes },
        ]),
      };
    };
    const half = await decode(f16);
    const full = await decode(f32);
    const stored = half.g.model.graph.initializers!.filter((i) => i.external);
    expect(stored.length).toBe(
      file.names().filter((n) => n.startsWith('decoder.') || n.startsWith('post_quant_conv.')).length,
    );
    expect(stored.every((i) => i.dataType === OnnxDataType.FLOAT16)).toBe(true);
    expect(half.g.model.graph.nodes.filter((n) => n.opType === 'Cast')).toHaveLength(stored.length);
    assertClose(half.out.image.data, full.out.image.data, { rtol: 1e-6, atol: 1e-7 }, 'F16 vs rounded F32');
    // and still close to the fp32 golden (fp16 weights: ~1e-3 relative)
    assertClose(half.out.image.data, goldens.vae.decode_sample.data, { rtol: 1e-2, atol: 1e-3 }, 'F16 vs golden');
  });

  it('readDiffusersFolder + exportPackGraphs give graphs at the pack root pointing at the weights by path', async () => {
    const { existsSync, readFileSync } = await import('node:fs');
    const src = await readDiffusersFolder(
      {
        exists: async (p) => existsSync(new URL(p, TINY_SD)),
        json: async (p) => JSON.parse(readFileSync(new URL(p, TINY_SD), 'utf8')),
        header: async (p) => tinyFiles.get(p)!,
      },
      { rank: goldens.unet_lora.rank, alpha: goldens.unet_lora.alpha },
    );
    expect(src.unet?.weights.location).toBe('unet/diffusion_pytorch_model.safetensors');
    const arch = {
      textEncoder: src.textEncoder!.config,
      unet: src.unet!.config,
      vae: src.vae!.config,
      imageEncoder: src.imageEncoder!.config,
      lora: { ...src.lora!, targets: [] },
    };
    const weights = new Map([...tinyFiles].map(([path, f]) => [path.split('/')[0], { path, header: f }]));
    const out = exportPackGraphs({ architecture: arch, weights });
    expect(out.map((g) => g.path)).toEqual([
      'text_encoder.onnx',
      'unet.onnx',
      'unet_personalized.onnx',
      'vae_encoder.onnx',
      'vae_decoder.onnx',
      'image_encoder.onnx',
    ]);
    expect(out.find((g) => g.graph === 'vae_decoder')!.externalData).toEqual([
      'vae/diffusion_pytorch_model.safetensors',
    ]);
    // the bytes load and run
    const dec = out.find((g) => g.graph === 'vae_decoder')!;
    const session = await OrtSession.create(dec.bytes, {
      backend: 'wasm',
      externalData: externalFiles(dec.externalData),
    });
    const r = await session.run({ latent: feed(goldens.vae.decode_input_latent) });
    await session.release();
    assertClose(r.image.data, goldens.vae.decode_sample.data, TOL, 'pack vae_decoder');
  });
});

// The real models' key lists (names, shapes) as F16 safetensors headers without data: the
// export must resolve every parameter at full size, as a real pack would.
const KEYS = new URL('../../../shared/data/reference/keys/', import.meta.url);
const keyJson = (p: string) => JSON.parse(readFileSync(new URL(p, KEYS), 'utf8'));

function f16Header(stem: string): SafetensorsHeader {
  const keys: { name: string; shape: number[] }[] = keyJson(`${stem}.keys.json`).keys;
  let offset = 0;
  const entries: Record<string, unknown> = {};
  for (const k of keys) {
    const bytes = 2 * k.shape.reduce((a, b) => a * b, 1);
    entries[k.name] = { dtype: 'F16', shape: k.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(entries));
  const prefix = new Uint8Array(8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  prefix.set(json, 8);
  return parseSafetensorsHeader(prefix);
}

describe("export at full size from the real models' key lists (structure only, not run)", () => {
  it.each(['sd15-unet', 'sd21-unet'])(
    '%s: personalized UNet, batch 2, 64×64 latents, every weight external fp16 + Cast',
    (stem) => {
      const header = f16Header(stem);
      const g = exportPersonalizedUNet(
        keyJson(`${stem}.config.json`),
        { header, location: 'unet.safetensors' },
        { rank: 4, alpha: 4 },
        { batch: 2, latentSize: 64 },
      );
      expect(g.outputs[0].shape).toEqual([2, 4, 64, 64]);
      expect(g.loraTargets).toHaveLength(16 * 8);
      const inits = g.model.graph.initializers!;
      const tensors = keyJson(`${stem}.keys.json`).num_tensors;
      expect(inits.filter((i) => i.external)).toHaveLength(tensors);
      expect(g.model.graph.nodes.filter((n) => n.opType === 'Cast')).toHaveLength(tensors);
      // structure only: the graph file stays small (constants are shapes, masks, scalars)
      expect(encodeModel(g.model).byteLength).toBeLessThan(4e6);
    },
  );

  it('SD VAE decoder and CLIP ViT-L/14 text encoder', () => {
    const vaeConfig = keyJson('sd-vae.config.json');
    const vae = exportModelGraphs(
      { vae: { config: vaeConfig, weights: { header: f16Header('sd-vae'), location: 'vae.safetensors' } } },
      { graphs: ['vae_decoder'] },
    )[0];
    expect(vae.outputs[0].shape).toEqual([1, vaeConfig.out_channels, vaeConfig.sample_size, vaeConfig.sample_size]);
    const textConfig = keyJson('clip-vit-large-patch14-text.config.json');
    const text = exportTextEncoder(textConfig, {
      header: f16Header('clip-vit-large-patch14-text'),
      location: 'te.safetensors',
    });
    expect(text.outputs[0].shape).toEqual([1, textConfig.max_position_embeddings, textConfig.hidden_size]);
    // the token embedding table stays on the CPU side (the pipeline splices v*)
    expect(text.model.graph.initializers!.filter((i) => i.external)).toHaveLength(
      keyJson('clip-vit-large-patch14-text.keys.json').num_tensors - 1,
    );
  });
});
