// generate with fp16 activations (a runtime opened with activations 'f16' on an adapter with
// shader-f16): close to the fp32 run, and exactly the fp32 run where fp16 storage overflows
// (|x| > 65504), because each such UNet step and the decode are redone with fp32 activations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { difference } from '../../test/close.ts';
import { testEngineWithF16 } from '../../test/engine.ts';
import { loadTinyPack } from '../../test/tiny-pack.ts';
import { generate } from './generate.ts';
import { PackRuntime } from './pack-runtime.ts';
import { randomNormals } from './random.ts';

let half: PackRuntime;
let full: PackRuntime;

beforeAll(async () => {
  const engine = await testEngineWithF16();
  half = await PackRuntime.open(engine, await loadTinyPack(), { activations: 'f16' });
  full = await PackRuntime.open(engine, await loadTinyPack(), { activations: 'f32' });
});
afterAll(() => {
  half?.dispose();
  full?.dispose();
});

const settings = {
  prompt: 'a photo of a cat',
  negativePrompt: '',
  steps: 3,
  guidance: 7.5,
  sampler: 'ddim' as const,
  blend: 0.25,
  batch: 1,
  seed: 5,
  concept: null,
  previewEvery: 0,
};

describe('generate with fp16 activations', () => {
  it('stays within the stated tolerance of the fp32 run', async () => {
    expect([half.halfActivations, full.halfActivations]).toEqual([true, false]);
    const [h] = await generate(half, settings);
    const [f] = await generate(full, settings);
    // Three sampler steps on fp16-stored activations (each UNet call within ~2e-3 of scale,
    // goldens-f16.test.ts): the final latent within 1e-2 of its scale. Not equal either:
    // the fp16 path really ran.
    const d = difference(h.latent, f.latent);
    console.info(`3-step latent, fp16 vs fp32 activations: max |Δ| ${(d.maxAbs / d.scale).toExponential(2)} of scale`);
    expect(d.maxAbs).toBeGreaterThan(0);
    expect(d.maxAbs).toBeLessThanOrEqual(1e-2 * d.scale);
    const px = difference(h.rgba, f.rgba);
    expect(px.maxAbs).toBeLessThanOrEqual(8); // of 255
  }, 120_000);

  it('redoes overflowing steps and the decode with fp32 activations: the fp32 result, bit for bit', async () => {
    const n = half.unet.config.in_channels * half.manifest.latentSize ** 2;
    // A latent of magnitude ~1e6: conv_in's output is far beyond fp16's 65504 (Inf there),
    // while fp32 holds it and the group norms bring it back to unit scale.
    const initialLatent = randomNormals(9, n).map((v) => v * 1e6);
    const [h] = await generate(half, { ...settings, initialLatent });
    const [f] = await generate(full, { ...settings, initialLatent });
    expect(h.latent.every(Number.isFinite)).toBe(true);
    expect(Array.from(h.latent)).toEqual(Array.from(f.latent));
    expect(Array.from(h.rgba)).toEqual(Array.from(f.rgba));
  }, 120_000);
});
