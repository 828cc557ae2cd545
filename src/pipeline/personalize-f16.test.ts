// Personalization with fp16 weights: tuning backpropagates through the UNet and the text
// encoder (to the LoRA offsets and v*) while their linear and conv weights are held fp16.
// Compared with the same run on fp32 weights: gradients must arrive (B moves off zero, v*
// moves) and the result must agree to fp16 accuracy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { decodeImage } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/types.ts';
import { PackRuntime } from './pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize } from './personalize.ts';

let f32: PackRuntime;
let f16: PackRuntime;
let photo: RgbaImage;

beforeAll(async () => {
  const engine = await testEngine();
  const pack = await loadTinyPack();
  f32 = await PackRuntime.open(engine, pack, { weights: 'f32' });
  f16 = await PackRuntime.open(engine, pack, { weights: 'f16', deferImageEncoder: true });
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))));
});
afterAll(() => {
  f32?.dispose();
  f16?.dispose();
});

describe('personalize with fp16 weights', () => {
  it('reaches v* and the LoRA offsets through fp16 weights and agrees with fp32 weights', async () => {
    expect(f16.unet.params.get('conv_in.weight', [32, 4, 3, 3]).dtype).toBe('f16');
    const o = { ...DEFAULT_PERSONALIZE, seed: 2, steps: 2 };
    const start = await personalize(f16, photo, { ...o, steps: 0 });
    const a = await personalize(f32, photo, o);
    const b = await personalize(f16, photo, o);
    // Gradients arrived: B starts at zero (the hypernetwork's B layer is zero-initialised) and moved.
    const bMax = (c: typeof b) => Math.max(...c.lora.flatMap((l) => Array.from(l.B, Math.abs)));
    expect(bMax(start)).toBe(0);
    expect(bMax(b)).toBeGreaterThan(1e-4);
    expect(Array.from(b.embedding)).not.toEqual(Array.from(start.embedding));
    // fp16 weights change each loss by ~1e-3 relative (goldens-f16); two Adam steps of lr 2e-3
    // move each value by at most ~4e-3, so the results agree to that scale.
    assertClose(b.lossCurve, a.lossCurve, { rtol: 1e-3, atol: 1e-5 }, 'loss curve'); // measured ≈ 1e-5
    assertClose(b.embedding, a.embedding, { rtol: 0, atol: 5e-3 }, 'v*');
    for (const [i, l] of b.lora.entries()) assertClose(l.B, a.lora[i].B, { rtol: 0, atol: 5e-3 }, `B ${l.module}`);
    console.info(
      `fp16 vs fp32 weights, 2 steps: losses ${b.lossCurve.map((x) => x.toFixed(5))} vs ${a.lossCurve.map((x) => x.toFixed(5))}`,
    );
  });
});
