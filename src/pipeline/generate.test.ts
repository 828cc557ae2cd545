import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, TINY_SD } from '../../test/tiny-pack.ts';
import type { ConceptData } from '../domain/types.ts';
import { generate, type GenerateEvent } from './generate.ts';
import { liveOnnxGraphs } from './onnx-denoiser.ts';
import { PackRuntime } from './pack-runtime.ts';
import { torchRandn } from './torch-random.ts';

const goldens = JSON.parse(readFileSync(`${TINY_SD}/goldens.json`, 'utf8'));
let rt: PackRuntime;

beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
});
afterAll(() => rt?.dispose());

const base = {
  steps: 10,
  guidance: 7.5,
  sampler: 'ddim' as const,
  blend: 0.25,
  batch: 1,
  negativePrompt: '',
  concept: null,
};

describe('generate on the tiny pack (engine)', () => {
  it('reproduces diffusers’ DDIM loop with classifier-free guidance (goldens ddim_loop)', async () => {
    // Every input is the golden's own: its prompts (the text encoder's, by reference), step
    // count, guidance scale and initial latent. DDIM with η = 0 is the loop it records.
    const g = goldens.ddim_loop;
    const text = goldens.text_encoder;
    expect([g.cond, g.uncond, g.eta, g.init_noise_sigma]).toEqual([
      'text_encoder.last_hidden_state',
      'text_encoder.uncond_last_hidden_state',
      0,
      1,
    ]);
    const settings = {
      steps: g.num_inference_steps,
      guidance: g.guidance_scale,
      prompt: text.prompt,
      negativePrompt: text.uncond_prompt,
    };
    const previews: number[] = [];
    const [img] = await generate(
      rt,
      { ...base, ...settings, sampler: 'ddim', seed: 0, initialLatent: Float32Array.from(g.initial_latent.data) },
      (e: GenerateEvent) => {
        if (e.preview) previews.push(e.step);
      },
    );
    expect(previews.length).toBe(g.steps.length);
    // x0 predictions stay large for a random UNet (std ≈ 9), so the bound is relative to scale.
    assertClose(img.latent, g.final_latent.data, { rtol: 1e-4, atol: 1e-4 }, 'final latent');
  });

  it('gives bit-identical latents for the same seed, different ones for another seed', async () => {
    const o = { ...base, steps: 3, sampler: 'dpmpp-2m' as const, prompt: 'a watercolor of a house', seed: 42 };
    const [a] = await generate(rt, o);
    const [b] = await generate(rt, o);
    const [c] = await generate(rt, { ...o, seed: 43 });
    expect(b.latent).toEqual(a.latent);
    expect(b.rgba).toEqual(a.rgba);
    expect(c.latent).not.toEqual(a.latent);
  });

  it('onnxruntime-web and the engine give the same images, with a concept (dual path + LoRA)', async () => {
    const r = rt.encoder!.targets;
    // A concept with non-trivial LoRA: deterministic pseudo-random A and B.
    let k = 1;
    const rnd = (n: number, s: number) =>
      Float32Array.from({ length: n }, () => (((k = (k * 16807) % 2147483647) / 2147483647) * 2 - 1) * s);
    const concept: ConceptData = {
      placeholder: 'S*',
      embedding: rnd(32, 0.02),
      nearestWords: ['cat'],
      hardTokenId: 2368,
      rank: 4,
      alpha: 4,
      blend: 0.25,
      lora: r.map((t) => ({
        module: t.module,
        A: rnd(4 * t.in, 0.3),
        aShape: [4, t.in],
        B: rnd(t.out * 4, 0.1),
        bShape: [t.out, 4],
      })),
      lossCurve: [],
      packId: rt.manifest.name,
      packHash: rt.hash,
    };
    const o = {
      ...base,
      steps: 3,
      sampler: 'euler' as const,
      prompt: 'a photo of S* on the beach',
      seed: 5,
      concept,
      blend: 0.4,
    };
    const [e] = await generate(rt, { ...o, runtime: 'engine' });
    const [x] = await generate(rt, { ...o, runtime: 'onnx' });
    assertClose(x.latent, e.latent, { rtol: 1e-4, atol: 1e-5 }, 'ORT vs engine latent');
    // and the concept changes the image relative to the plain prompt
    const [plain] = await generate(rt, { ...o, concept: null });
    expect(plain.latent).not.toEqual(e.latent);
    // ORT holds one UNet session at a time (each would hold its own copy of the weights).
    expect(liveOnnxGraphs(rt).filter((g) => g.startsWith('unet'))).toEqual(['unet_personalized']);
  });

  it('onnxruntime-web keeps one UNet session: plain generation releases the personalized one', async () => {
    await generate(rt, { ...base, steps: 1, sampler: 'euler', prompt: 'a house', seed: 1, runtime: 'onnx' });
    expect(liveOnnxGraphs(rt).filter((g) => g.startsWith('unet'))).toEqual(['unet']);
  }, 300_000);

  it('--rng torch starts from torch.randn(manual_seed(seed)), as diffusers with a CPU generator', async () => {
    const o = { ...base, steps: 2, prompt: 'a photo of a cat', seed: 7 };
    const [t] = await generate(rt, { ...o, rng: 'torch' });
    const [ref] = await generate(rt, { ...o, initialLatent: torchRandn(7, 4 * 8 * 8) });
    const [p] = await generate(rt, o);
    expect(t.latent).toEqual(ref.latent);
    expect(p.latent).not.toEqual(t.latent);
  });

  it('refuses a concept made with another pack', async () => {
    const concept = { packId: 'other', packHash: 'f'.repeat(64), embedding: new Float32Array(32) } as ConceptData;
    await expect(generate(rt, { ...base, prompt: 'S*', seed: 1, concept })).rejects.toThrow(/made with pack "other"/);
  });
});
