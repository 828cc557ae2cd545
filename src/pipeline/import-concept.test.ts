// Other tools' LoRA and embedding files, every layout, end to end on the tiny pack.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, TINY_SD } from '../../test/tiny-pack.ts';
import type { Tensor } from '../engine/tensor.ts';
import { SafetensorsParams } from '../models/engine-params.ts';
import type { LoraPair } from '../models/lora.ts';
import { Params } from '../models/params.ts';
import { unet } from '../models/unet/unet.ts';
import {
  decodeFloat32,
  parseSafetensors,
  writeSafetensors,
  type SafetensorsTensorInput,
} from '../packs/safetensors.ts';
import { exportForA1111, exportForDiffusers } from '../storage/concept-export.ts';
import { readForeignFile, type ForeignReadOptions } from '../storage/concept-foreign.ts';
import { ConceptFileError, type ConceptPackInfo } from '../storage/concept-safetensors.ts';
import type { ConceptData } from '../domain/types.ts';
import { generate } from './generate.ts';
import { conceptFromForeign } from './import-concept.ts';
import { PackRuntime } from './pack-runtime.ts';
import { encodePrompt, tokenizeWithPlaceholder } from './prompt.ts';

const goldens = JSON.parse(readFileSync(`${TINY_SD}/goldens.json`, 'utf8'));
// diffusers' own save_lora_weights output: PEFT names, r 4, lora_alpha 4, no embedding.
const goldenBytes = new Uint8Array(readFileSync(`${TINY_SD}/${goldens.unet_lora.tensors_file}`));
type GoldenArray = { shape: number[]; data: number[] };
/** Goldens name inputs stored elsewhere by dotted path, e.g. "text_encoder.last_hidden_state". */
const ref = (v: GoldenArray | string): GoldenArray =>
  typeof v === 'string' ? v.split('.').reduce((o, k) => o[k], goldens) : v;
const golden = parseSafetensors(goldenBytes);
const gTensor = (name: string) => ({ info: golden.tensors.find((t) => t.name === name)!, data: golden.float32(name) });
const modules = golden.tensors
  .filter((t) => t.name.endsWith('.lora_A.weight'))
  .map((t) => t.name.slice(5, -'.lora_A.weight'.length));

let rt: PackRuntime;
let pack: ConceptPackInfo;
beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
  pack = {
    hash: rt.hash,
    id: rt.manifest.name,
    tokenDim: rt.tokenDim,
    rank: rt.manifest.architecture.lora.rank,
    targets: rt.loraTargets,
  };
});
afterAll(() => rt?.dispose());

const read = (bytes: Uint8Array, fileName: string, o: Partial<ForeignReadOptions> = {}) =>
  readForeignFile(bytes, pack, { fileName, ...o });
const f32 = (name: string, shape: number[], data: Float32Array): SafetensorsTensorInput => ({
  name,
  dtype: 'F32',
  shape,
  data,
});

/** The golden LoRA re-written with other names (and optionally a lower rank and an alpha). */
function relayout(
  name: (m: string, part: 'A' | 'B' | 'alpha') => string | null,
  opts: { rank?: number; alpha?: number; extra?: SafetensorsTensorInput[] } = {},
) {
  const out: SafetensorsTensorInput[] = [];
  for (const m of modules) {
    const A = gTensor(`unet.${m}.lora_A.weight`);
    const B = gTensor(`unet.${m}.lora_B.weight`);
    const r = opts.rank ?? 4;
    const [, inDim] = A.info.shape;
    const [outDim] = B.info.shape;
    const a = A.data.slice(0, r * inDim);
    const b = new Float32Array(outDim * r);
    for (let o = 0; o < outDim; o++) for (let j = 0; j < r; j++) b[o * r + j] = B.data[o * 4 + j];
    out.push(f32(name(m, 'A')!, [r, inDim], a), f32(name(m, 'B')!, [outDim, r], b));
    const alphaName = name(m, 'alpha');
    if (alphaName && opts.alpha !== undefined) out.push(f32(alphaName, [], Float32Array.of(opts.alpha)));
  }
  return writeSafetensors([...out, ...(opts.extra ?? [])]);
}
const kohya = (m: string) => `lora_unet_${m.replaceAll('.', '_')}`;

describe('importing LoRA files', () => {
  it('PEFT (diffusers save_lora_weights) at blend 1 gives diffusers’ own LoRA output (goldens unet_lora)', async () => {
    const concept = await conceptFromForeign(rt, [read(goldenBytes, goldens.unet_lora.tensors_file)], {
      placeholder: 'cat',
    });
    expect(concept.placeholder).toBe('cat');
    expect(concept.blend).toBe(1);
    const g = goldens.unet_lora;
    const { engine, ops } = rt;
    const out = await engine.scopeAsync(async () => {
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const l of concept.lora)
        layers.set(l.module, { A: engine.tensor(l.A, l.aShape), B: engine.tensor(l.B, l.bShape) });
      const context = ref(g.encoder_hidden_states);
      const ctx = engine.tensor(context.data, context.shape);
      const latent = ref(g.latent);
      return unet(ops, rt.unet.params, rt.unet.config, {
        sample: engine.tensor(latent.data, latent.shape),
        timesteps: [g.timestep],
        cond: {
          context: ctx,
          lora: { layers, scale: concept.alpha / concept.rank },
          dual: { hardContext: ctx, alpha: 1 },
        },
      }).read();
    });
    assertClose(out, g.noise_pred.data, { rtol: 1e-4, atol: 1e-5 }, 'noise_pred, imported PEFT LoRA at blend 1');
  });

  it('blend 1 equals the UNet with the LoRA merged into its weights (W + scale·B·A)', async () => {
    // kohya names, rank 2 with alpha 1 (scale 0.5): padded to the pack's rank 4 and folded.
    const bytes = relayout(
      (m, p) => `${kohya(m)}.${p === 'A' ? 'lora_down.weight' : p === 'B' ? 'lora_up.weight' : 'alpha'}`,
      { rank: 2, alpha: 1 },
    );
    const r = read(bytes, 'k.safetensors');
    expect(r.lora).toMatchObject({ layout: 'kohya', fileRank: 2, matched: 32 });
    const concept = await conceptFromForeign(rt, [r], { placeholder: 'cat' });
    // Merge by hand into a copy of the UNet file.
    const file = parseSafetensors(new Uint8Array(readFileSync(`${TINY_SD}/unet/diffusion_pytorch_model.safetensors`)));
    const tensors = file.tensors.map((t) => {
      const data = decodeFloat32(t.dtype, file.rawBytes(t.name)).slice();
      const m = modules.find((x) => `${x}.weight` === t.name);
      if (m) {
        const A = gTensor(`unet.${m}.lora_A.weight`);
        const B = gTensor(`unet.${m}.lora_B.weight`);
        const [outDim, inDim] = t.shape;
        for (let o = 0; o < outDim; o++)
          for (let i = 0; i < inDim; i++) {
            let s = 0;
            for (let j = 0; j < 2; j++) s += B.data[o * 4 + j] * A.data[j * inDim + i];
            data[o * inDim + i] += 0.5 * s;
          }
      }
      return f32(t.name, [...t.shape], data);
    });
    const merged = new SafetensorsParams(rt.engine, [parseSafetensors(writeSafetensors(tensors))]);
    const { engine, ops } = rt;
    try {
      const g = goldens.unet;
      const [viaConcept, viaMerge] = await engine.scopeAsync(async () => {
        const layers = new Map<string, LoraPair<Tensor>>();
        for (const l of concept.lora)
          layers.set(l.module, { A: engine.tensor(l.A, l.aShape), B: engine.tensor(l.B, l.bShape) });
        const context = ref(g.encoder_hidden_states);
        const ctx = engine.tensor(context.data, context.shape);
        const x = engine.tensor(g.latent.data, g.latent.shape);
        const a = unet(ops, rt.unet.params, rt.unet.config, {
          sample: x,
          timesteps: [g.timestep],
          cond: { context: ctx, lora: { layers, scale: 1 }, dual: { hardContext: ctx, alpha: 1 } },
        });
        const b = unet(ops, new Params(merged), rt.unet.config, {
          sample: x,
          timesteps: [g.timestep],
          cond: { context: ctx, lora: null, dual: null },
        });
        return [await a.read(), await b.read()];
      });
      assertClose(viaConcept, viaMerge, { rtol: 1e-4, atol: 1e-5 }, 'LoRA at blend 1 vs merged weights');
      const base = goldens.unet.noise_pred.data as number[];
      expect(Math.max(...viaMerge.map((v, i) => Math.abs(v - base[i])))).toBeGreaterThan(1e-3); // the LoRA does something
    } finally {
      merged.dispose();
    }
  });

  it('diffusers training (lora.down/up), attention processors and kohya give the PEFT file’s tensors', async () => {
    const peft = (await conceptFromForeign(rt, [read(goldenBytes, 'p.safetensors')], { placeholder: 'x' })).lora;
    const layouts: [string, (m: string, p: 'A' | 'B' | 'alpha') => string | null][] = [
      ['diffusers', (m, p) => (p === 'alpha' ? null : `unet.${m}.lora.${p === 'A' ? 'down' : 'up'}.weight`)],
      [
        'attn-procs',
        (m, p) =>
          p === 'alpha'
            ? null
            : m.replace(
                /\.(to_q|to_k|to_v|to_out\.0)$/,
                (_, x: string) =>
                  `.processor.${x === 'to_out.0' ? 'to_out' : x}_lora.${p === 'A' ? 'down' : 'up'}.weight`,
              ),
      ],
      ['kohya', (m, p) => `${kohya(m)}.${p === 'A' ? 'lora_down.weight' : p === 'B' ? 'lora_up.weight' : 'alpha'}`],
      ['peft', (m, p) => (p === 'alpha' ? null : `base_model.model.${m}.lora_${p}.weight`)],
    ];
    for (const [layout, name] of layouts) {
      const r = read(relayout(name, { alpha: 4 }), `${layout}.safetensors`);
      expect(r.lora!.layout).toBe(layout);
      expect(r.lora!.lora).toEqual(peft);
    }
  });

  it('a text-encoder part is refused clearly, or left out on request', () => {
    const te = f32(
      'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight',
      [4, 32],
      new Float32Array(128),
    );
    const bytes = relayout(
      (m, p) => `${kohya(m)}.${p === 'A' ? 'lora_down.weight' : p === 'B' ? 'lora_up.weight' : 'alpha'}`,
      { extra: [te] },
    );
    expect(() => read(bytes, 'te.safetensors')).toThrow(/also trains the text encoder .*UNet only/);
    expect(read(bytes, 'te.safetensors', { dropTextEncoder: true }).lora!.droppedTextEncoder).toBe(1);
    // LoRA on other UNet layers: refused, or only the attention part on request.
    const ffName = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2.lora_down.weight';
    const withFf = relayout(
      (m, p) => `${kohya(m)}.${p === 'A' ? 'lora_down.weight' : p === 'B' ? 'lora_up.weight' : 'alpha'}`,
      {
        extra: [f32(ffName, [4, 128], new Float32Array(512))],
      },
    );
    expect(() => read(withFf, 'ff.safetensors')).toThrow(/outside the attention projections.*attention-only/);
    const partial = read(withFf, 'ff.safetensors', { dropOtherLayers: true }).lora!;
    expect(partial).toMatchObject({ matched: 32, droppedOtherLayers: 1 });
  });

  it('names expected vs found: a rank above the pack’s, another model, other layers, a pickle', () => {
    const m0 = modules[0];
    const big = writeSafetensors([
      f32(`unet.${m0}.lora.down.weight`, [8, 32], new Float32Array(256)),
      f32(`unet.${m0}.lora.up.weight`, [32, 8], new Float32Array(256)),
    ]);
    expect(() => read(big, 'big.safetensors')).toThrow(
      /lora\.down\/lora\.up \(diffusers training\) naming: .*expected rank 4 × 32.*found 8 × 32/,
    );
    const sd15 = writeSafetensors([
      f32(`unet.${m0}.lora_A.weight`, [4, 320], new Float32Array(1280)),
      f32(`unet.${m0}.lora_B.weight`, [32, 4], new Float32Array(128)),
    ]);
    expect(() => read(sd15, 'sd15.safetensors')).toThrow(/expected rank 4 × 32.*found 4 × 320.*different model/);
    const ff = writeSafetensors([
      f32(
        'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2.lora_down.weight',
        [4, 128],
        new Float32Array(512),
      ),
    ]);
    expect(() => read(ff, 'ff.safetensors')).toThrow(/outside the attention projections/);
    expect(() => read(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0]), 'x.pt')).toThrow(/pickle/);
    const e = (() => {
      try {
        read(big, 'big.safetensors');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ConceptFileError);
  });
});

describe('importing embeddings', () => {
  const C = 32;
  const row = (id: number) => rt.tokenEmbedding(id);
  const enc = async (prompt: string, placeholder: string | null, c: ConceptData | null) =>
    rt.engine.scopeAsync(async () => {
      const k = c?.hardTokenIds?.length ?? 1;
      const tokens = tokenizeWithPlaceholder(rt, prompt, placeholder, c ? (c.hardTokenIds ?? c.hardTokenId) : 0);
      const v = c ? rt.engine.tensor(c.embedding, k > 1 ? [k, C] : [C]) : null;
      return encodePrompt(rt, tokens, v).read();
    });

  it('diffusers learned_embeds ({token: vector}), A1111 emb_params and string_to_param.* all read', async () => {
    const cat = rt.tokenizer.encode('cat');
    expect(cat.length).toBe(1);
    const layouts: [string, string][] = [
      ['<cat>', 'diffusers'],
      ['emb_params', 'a1111'],
      ['string_to_param.*', 'string_to_param'],
    ];
    for (const [key, layout] of layouts) {
      const r = read(writeSafetensors([f32(key, [1, C], await row(cat[0]))]), 'cat-emb.safetensors');
      expect(r.embedding).toMatchObject({ layout, count: 1 });
      const c = await conceptFromForeign(rt, [r]);
      expect(c.placeholder).toBe(layout === 'diffusers' ? '<cat>' : 'cat-emb');
      expect(c.hardTokenId).toBe(cat[0]); // the nearest word to the word's own vector is the word
      expect(c.lora.every((l) => l.B.every((v) => v === 0))).toBe(true);
      // The learned word in the prompt is the word itself: the same conditioning.
      assertClose(
        await enc(`a photo of ${c.placeholder}`, c.placeholder, c),
        await enc('a photo of cat', null, null),
        { rtol: 1e-5, atol: 1e-6 },
        layout,
      );
    }
  });

  it('several vectors become a multi-token placeholder, generate changes as expected', async () => {
    const ids = rt.tokenizer.encode('a photo'); // 2 tokens
    expect(ids.length).toBe(2);
    const vectors = new Float32Array(2 * C);
    for (const [j, id] of ids.entries()) vectors.set(await row(id), j * C);
    const r = read(writeSafetensors([f32('emb_params', [2, C], vectors)]), 'photo.safetensors');
    const c = await conceptFromForeign(rt, [r], { placeholder: 'S*' });
    expect(c.hardTokenIds).toEqual(ids);
    assertClose(
      await enc('S* of a cat', 'S*', c),
      await enc('a photo of a cat', null, null),
      { rtol: 1e-5, atol: 1e-6 },
      'two vectors',
    );
    // The whole pipeline: same image as the words themselves; not the same as without it.
    const o = { steps: 1, guidance: 7.5, sampler: 'ddim' as const, batch: 1, negativePrompt: '', seed: 3, blend: 1 };
    const [withC] = await generate(rt, { ...o, prompt: 'S* of a cat', concept: c });
    const [words] = await generate(rt, { ...o, prompt: 'a photo of a cat', concept: null });
    const [bare] = await generate(rt, { ...o, prompt: 'S* of a cat', concept: null });
    assertClose(withC.latent, words.latent, { rtol: 1e-4, atol: 1e-5 }, 'generate with a 2-vector placeholder');
    expect(bare.latent).not.toEqual(withC.latent);
  });

  it('an embedding for another model is refused with the widths', () => {
    expect(() =>
      read(writeSafetensors([f32('emb_params', [2, 768], new Float32Array(1536))]), 'sd15.safetensors'),
    ).toThrow(/expected 1 to 32 vectors × 32 .*found 2 × 768 \(768 values per vector is Stable Diffusion 1\.x\)/);
  });

  it('LoRA-only concept: the placeholder is a plain word, so blend 0 is the prompt as written', async () => {
    const r = read(goldenBytes, 'my-style.safetensors');
    const c = await conceptFromForeign(rt, [r]);
    expect(c.placeholder).toBe('my-style');
    const ids = rt.tokenizer.encode('my-style');
    expect(c.hardTokenIds ?? [c.hardTokenId]).toEqual(ids);
    assertClose(
      await enc('a photo of my-style', 'my-style', c),
      await enc('a photo of my-style', null, null),
      { rtol: 1e-5, atol: 1e-6 },
      'C = prompt',
    );
  });

  it('round-trips the app’s own exports: diffusers folder and A1111 files', async () => {
    const base = await conceptFromForeign(rt, [
      read(goldenBytes, 'g.safetensors'),
      read(writeSafetensors([f32('<cat>', [1, C], await row(2368))]), 'e.safetensors'),
    ]);
    for (const bundle of [exportForDiffusers(base, { name: 'n' }), exportForA1111(base, { name: 'n' })]) {
      const reads = bundle.files.filter((f) => f.name.endsWith('.safetensors')).map((f) => read(f.bytes, f.name));
      const back = await conceptFromForeign(rt, reads, { placeholder: base.placeholder });
      expect(back.embedding).toEqual(base.embedding);
      back.lora.forEach((l, i) =>
        assertClose(l.B, base.lora[i].B, { rtol: 1e-6, atol: 0 }, `${bundle.format} ${l.module}`),
      );
    }
  });
});
