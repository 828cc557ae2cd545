// The encoder's pre-training on the tiny pack: the zero-initialised B heads, a short run
// lowering the objective on fixed samples, bit-for-bit resume, the checkpoint's contents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { clipVision } from '../models/clip/clip-vision.ts';
import { tuningEncoder } from '../models/tuning-encoder/tuning-encoder.ts';
import { unet, unetEncoderFeatures } from '../models/unet/unet.ts';
import { toClipPixels } from '../image/pixels.ts';
import { resize } from '../image/transform.ts';
import { PackRuntime } from '../pipeline/pack-runtime.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../pipeline/prompt.ts';
import { readCheckpoint, type HostTensor } from './encoder-checkpoint.ts';
import {
  DEFAULT_TRAIN_ENCODER,
  EncoderTrainer,
  fixedDraws,
  type StepRecord,
  type TrainEncoderOptions,
} from './train-encoder.ts';
import { listImageFiles, loadTrainingImages, type TrainingImage } from './training-data.ts';

let rt: PackRuntime;
let images: TrainingImage[];
let stepThree: Uint8Array | null = null;

beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
  images = await loadTrainingImages(listImageFiles(PHOTOS), 64);
});
afterAll(() => rt?.dispose());

const OPTIONS: TrainEncoderOptions = {
  ...DEFAULT_TRAIN_ENCODER,
  steps: 6,
  batch: 2,
  lr: 1e-3,
  warmup: 1,
  seed: 7,
  initSeed: 3,
};

describe('train-encoder on the tiny pack', () => {
  it("the B heads start at zero: the UNet with the encoder's first LoRA equals the vanilla UNet exactly", async () => {
    const { engine, ops } = rt;
    const trainer = EncoderTrainer.create(rt, images, OPTIONS);
    try {
      const enc = trainer.encoderModel;
      const S = rt.vision.config.image_size;
      const h = rt.manifest.latentSize;
      const B = 2;
      const { vanilla, adapted, bMax, aMax } = await engine.noGrad(() =>
        engine.scopeAsync(async () => {
          const pixels = new Float32Array(B * 3 * S * S);
          images.slice(0, B).forEach((img, b) => {
            const sq = resize(img.square, S, S);
            pixels.set(toClipPixels(sq.data, S, S, S), b * 3 * S * S);
          });
          const z = engine.tensor(
            Float32Array.from({ length: B * 4 * h * h }, (_, i) => Math.sin(i)),
            [B, 4, h, h],
          );
          const ctx = ops.broadcastTo(
            encodePrompt(rt, tokenizeWithPlaceholder(rt, 'a photo of a cat', null, 0), null),
            [B, 77, rt.tokenDim],
          );
          const clipTokens = clipVision(
            ops,
            rt.vision.params,
            rt.vision.config,
            engine.tensor(pixels, [B, 3, S, S]),
          ).lastHiddenState;
          const feats = unetEncoderFeatures(ops, rt.unet.params, rt.unet.config, {
            sample: z,
            timesteps: [0, 0],
            cond: { context: ctx, lora: null, dual: null },
          });
          const out = tuningEncoder(ops, enc.params, enc.config, enc.targets, clipTokens, feats);
          let bMax = 0;
          let aMax = 0;
          for (const p of out.lora.layers.values()) {
            for (const x of await p.B.read()) bMax = Math.max(bMax, Math.abs(x));
            for (const x of await p.A.read()) aMax = Math.max(aMax, Math.abs(x));
          }
          const run = (lora: typeof out.lora | null) =>
            unet(ops, rt.unet.params, rt.unet.config, {
              sample: z,
              timesteps: [500, 800],
              cond: { context: ctx, lora, dual: null },
            }).read();
          return { vanilla: await run(null), adapted: await run(out.lora), bMax, aMax };
        }),
      );
      expect(bMax).toBe(0);
      expect(aMax).toBeGreaterThan(0); // A is not zero: the equality below comes from B alone
      expect(adapted).toEqual(vanilla);
    } finally {
      trainer.dispose();
    }
  });

  it('6 steps lower the objective on fixed samples; a resume from the step-3 checkpoint continues bit for bit', async () => {
    const evalDraws = fixedDraws(rt, images.length, 4);
    const a = EncoderTrainer.create(rt, images, OPTIONS);
    const records: StepRecord[] = [];
    const evals = new Map<number, number>();
    let checkpoint: Uint8Array | null = null;
    let finalA: Map<string, HostTensor>;
    const t0 = performance.now();
    try {
      for (let s = 1; s <= 6; s++) {
        records.push(await a.trainStep());
        if (s === 3) checkpoint = await a.checkpoint();
        if (s <= 2 || s >= 5) evals.set(s, (await a.evaluate(evalDraws)).total!);
      }
      finalA = await a.weights();
    } finally {
      a.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    const first = (evals.get(1)! + evals.get(2)!) / 2;
    const last = (evals.get(5)! + evals.get(6)!) / 2;
    console.info(
      `train-encoder: 6 steps × 2 images in ${seconds.toFixed(1)} s; training loss ${records.map((r) => r.losses.total!.toFixed(4)).join(' ')}; ` +
        `fixed-sample objective after steps 1,2,5,6: ${[...evals.values()].map((x) => x.toFixed(5)).join(' ')} (mean ${first.toFixed(5)} → ${last.toFixed(5)})`,
    );
    expect(records.every((r) => Number.isFinite(r.losses.total))).toBe(true);
    expect(last).toBeLessThan(first);
    // Whole batches of each epoch's order: 4 of the 5 images per epoch (steps 1–2), never one twice in a batch.
    expect(new Set(records.slice(0, 2).flatMap((r) => r.images)).size).toBe(4);
    for (const r of records) expect(new Set(r.images).size).toBe(2);

    // The checkpoint holds the state of step 3 …
    stepThree = checkpoint;
    const c = readCheckpoint<TrainEncoderOptions>(checkpoint!);
    expect(c.step).toBe(3);
    expect(c.adamStep).toBe(3);
    expect(c.rng).toEqual({ generator: 'philox4x32-10', seed: 7, stream: 4 });
    expect(c.dataOrder.consumed).toBe(6);
    expect(c.dataOrder.epoch).toBe(1);
    expect(c.dataOrder.position).toBe(2);
    expect([...c.dataOrder.order].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(c.images).toEqual(images.map((i) => i.id));
    expect(c.params.size).toBe(finalA.size);

    // … and a fresh trainer resumed from it repeats steps 4–6 exactly (and frees all it held).
    const live = rt.engine.pool.getStats().liveBytes;
    const b = EncoderTrainer.resume(rt, images, checkpoint!);
    try {
      expect(b.step).toBe(3);
      for (let s = 4; s <= 6; s++) {
        const r = await b.trainStep();
        expect(r.step).toBe(s);
        expect(r.images).toEqual(records[s - 1].images);
        expect(r.lr).toBe(records[s - 1].lr);
        expect(r.losses).toEqual(records[s - 1].losses);
      }
      const finalB = await b.weights();
      for (const [name, t] of finalA) expect(finalB.get(name)!.data, name).toEqual(t.data);
    } finally {
      b.dispose();
    }
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
  });

  it('resume refuses another data set or changed trajectory options', () => {
    // The step-3 checkpoint of the run above.
    expect(stepThree).not.toBeNull();
    expect(() => EncoderTrainer.resume(rt, images.slice(0, 4), stepThree!)).toThrow(/training images differ/);
    expect(() => EncoderTrainer.resume(rt, images, stepThree!, { ...OPTIONS, reg: 'l2' })).toThrow(/reg is "l2"/);
    expect(() => EncoderTrainer.resume(rt, images, stepThree!, { ...OPTIONS, seed: 8 })).toThrow(/seed/);
    expect(() => EncoderTrainer.resume(rt, images, stepThree!, { ...OPTIONS, steps: 3 })).toThrow(/at step 3/);
  });
});
