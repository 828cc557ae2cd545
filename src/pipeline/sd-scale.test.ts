// Stable Diffusion 1.5 at full channel width, end to end in Node: a synthetic random-weight
// folder with the real names and shapes (fewer layers per block, 64 px images / 8×8
// latents) → `likeness pack` → personalize (with and without checkpointing) → generate →
// decoded image, every number finite. What this covers is the real widths where device
// limits bite: the 49408×768 token table, the VAE's 512-wide blocks and its one-head
// 512-wide mid-block attention, the 1280-wide UNet blocks (head dim 160).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { PHOTOS } from '../../test/tiny-pack.ts';
import { vaeDecode } from '../models/vae/vae.ts';
import { buildPackFromPaths } from '../packs/pack-build-node.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import { writeSyntheticSd } from '../packs/synthetic-sd.ts';
import { generate } from './generate.ts';
import { decodeImage } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/types.ts';
import { PackRuntime } from './pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize, type PersonalizeEvent } from './personalize.ts';
import type { ConceptData } from '../domain/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'likeness-sd-scale-'));
let rt: PackRuntime;
let photo: RgbaImage;
const timings: string[] = [];

async function timed<T>(what: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  const out = await f();
  timings.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

const allFinite = (a: ArrayLike<number>) => {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
};

beforeAll(async () => {
  const folder = join(dir, 'sd15');
  await timed('synthetic folder', () =>
    writeSyntheticSd({
      out: folder,
      variant: 'sd15',
      dtype: 'fp16',
      imageSize: 64,
      unetLayersPerBlock: 1,
      textLayers: 1,
      visionLayers: 1,
      visionImageSize: 56,
    }),
  );
  await timed('pack', () => buildPackFromPaths({ from: folder, out: join(dir, 'pack'), name: 'sd15-synthetic' }));
  rmSync(folder, { recursive: true, force: true });
  const engine = await testEngine();
  rt = await timed('open', async () => PackRuntime.open(engine, await loadPackFromFolder(join(dir, 'pack'))));
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))));
}, 600_000);

afterAll(() => {
  rt?.dispose();
  rmSync(dir, { recursive: true, force: true });
  console.info(`sd-scale timings: ${timings.join(', ')}`);
});

describe('SD 1.5 widths end to end (synthetic weights, 64 px)', () => {
  let concept: ConceptData;

  it('the pack has the real widths', () => {
    expect(rt.manifest.imageSize).toBe(64);
    expect(rt.manifest.latentSize).toBe(8);
    expect(rt.tokenTableTensor().shape).toEqual([49408, 768]);
    expect(rt.unet.config.block_out_channels).toEqual([320, 640, 1280, 1280]);
    expect(rt.vae.config.block_out_channels).toEqual([128, 256, 512, 512]);
  });

  it.each([false, true])('personalizes 2 steps from the class word (checkpointing %s)', async (checkpointing) => {
    const events: PersonalizeEvent[] = [];
    const c = await timed(`personalize ckpt=${checkpointing}`, () =>
      personalize(rt, photo, { ...DEFAULT_PERSONALIZE, classWord: 'cat', steps: 2, seed: 1, checkpointing }, (e) =>
        events.push(e),
      ),
    );
    const steps = events.filter((e) => e.stage === 'tuning');
    expect(steps.length).toBe(2);
    expect(c.lossCurve.length).toBe(2);
    expect(allFinite(c.lossCurve)).toBe(true);
    expect(c.embedding.length).toBe(768);
    expect(allFinite(c.embedding)).toBe(true);
    expect(c.lora.every((l) => allFinite(l.A) && allFinite(l.B))).toBe(true);
    concept = c;
  });

  it('generates 2 steps with the concept and decodes a finite image', async () => {
    const [img] = await timed('generate', () =>
      generate(rt, {
        steps: 2,
        guidance: 7.5,
        sampler: 'ddim',
        blend: 0.25,
        batch: 1,
        negativePrompt: '',
        prompt: 'a photo of S* on a beach',
        seed: 0,
        concept,
      }),
    );
    expect(img.width).toBe(64);
    expect(img.rgba.length).toBe(64 * 64 * 4);
    expect(allFinite(img.latent)).toBe(true);
    // the VAE's float output itself (generate returns 8-bit pixels, which clamp NaN away)
    const { engine } = rt;
    const pixels = await engine.noGrad(() =>
      engine.scopeAsync(async () =>
        vaeDecode(
          rt.ops,
          rt.vae.params,
          rt.vae.config,
          engine.tensor(
            img.latent.map((v) => v / rt.manifest.vaeScalingFactor),
            [1, 4, 8, 8],
          ),
        ).read(),
      ),
    );
    expect(pixels.length).toBe(3 * 64 * 64);
    expect(allFinite(pixels)).toBe(true);
  });
});
