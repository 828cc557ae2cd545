import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { decodeImage } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/types.ts';
import { PackRuntime } from './pack-runtime.ts';
import type { ConceptData } from '../domain/types.ts';
import {
  conceptDiffusionLoss,
  DEFAULT_PERSONALIZE,
  NumericalError,
  personalize,
  prepareImage,
  type PersonalizeEvent,
} from './personalize.ts';

let rt: PackRuntime;
let photo: RgbaImage;

beforeAll(async () => {
  const engine = await testEngine();
  rt = await PackRuntime.open(engine, await loadTinyPack());
  photo = await decodeImage(new Uint8Array(readFileSync(join(PHOTOS, 'chelsea.png'))));
});
afterAll(() => rt?.dispose());

describe('personalize on the tiny pack', () => {
  it('runs 12 steps, reports nearest words and a loss per step, and frees its memory', async () => {
    const events: PersonalizeEvent[] = [];
    const t0 = performance.now();
    const concept = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 1 }, (e) => events.push(e));
    const ms = performance.now() - t0;
    const steps = events.filter((e) => e.stage === 'tuning');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(steps.every((e) => Number.isFinite(e.loss))).toBe(true);
    const near = events.find((e) => e.stage === 'nearest');
    expect(near && near.words.length).toBe(5);
    expect(concept.embedding.length).toBe(32);
    expect(concept.lora.length).toBe(32);
    expect(concept.lossCurve.length).toBe(12);
    // The tiny pack carries the untrained encoder (likeness pack --untrained-encoder): the start says so.
    expect(concept.start).toEqual({ kind: 'encoder', trained: false });
    expect(near?.stage === 'nearest' && near.start).toEqual({ kind: 'encoder', trained: false });
    // The first run uploads the pack's weights, so the leak check runs on the second.
    console.info(
      `personalize: ${ms.toFixed(0)} ms, near: ${near?.stage === 'nearest' ? near.words.join(', ') : ''}, losses ${concept.lossCurve.map((l) => l.toFixed(3)).join(' ')}`,
    );
    // Same seed → the same concept, bit for bit; and nothing stays allocated.
    const live = rt.engine.pool.getStats().liveBytes;
    const again = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 1 });
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
    expect(again.embedding).toEqual(concept.embedding);
    expect(again.lossCurve).toEqual(concept.lossCurve);
    expect(again.lora[7].B).toEqual(concept.lora[7].B);
  });
});

describe('personalize: what tuning does', () => {
  const fixed = [100, 300, 500, 700, 900, 250, 600, 850].map((t, i) => ({
    t,
    seed: 1000 + i,
    view: i % 4,
    template: i,
  }));

  it('12 steps lower the diffusion loss of the photo on fixed (t, ε) samples', async () => {
    const tuned = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 3, learningRate: 1e-2 });
    // The encoder's prediction is what 0 steps give (same seed → same θ₀).
    const initial = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 3, steps: 0 });
    const img = prepareImage(rt, photo);
    try {
      const before = await conceptDiffusionLoss(rt, initial, img, fixed);
      const after = await conceptDiffusionLoss(rt, tuned, img, fixed);
      console.info(
        `diffusion loss on 8 fixed samples: before ${before.toFixed(5)}, after 12 steps ${after.toFixed(5)}`,
      );
      expect(after).toBeLessThan(before);
    } finally {
      img.latents.dispose();
      img.clipPixels.dispose();
    }
  });

  it('the L2 anchors keep θ nearer θ₀ as λ grows', async () => {
    const initial = await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 4, steps: 0 });
    const dist = (c: ConceptData) => {
      let s = 0;
      c.embedding.forEach((v, i) => (s += (v - initial.embedding[i]) ** 2));
      c.lora.forEach((l, k) => {
        l.A.forEach((v, i) => (s += (v - initial.lora[k].A[i]) ** 2));
        l.B.forEach((v, i) => (s += (v - initial.lora[k].B[i]) ** 2));
      });
      return Math.sqrt(s);
    };
    const d: number[] = [];
    const lambdas = [0, 1e-4, 1, 300];
    for (const lambda of lambdas) {
      const c = await personalize(rt, photo, {
        ...DEFAULT_PERSONALIZE,
        seed: 4,
        steps: 4,
        learningRate: 1e-2,
        lambdaWeights: lambda,
        lambdaEmbedding: lambda,
      });
      d.push(dist(c));
    }
    console.info(
      `‖θ − θ₀‖ after 4 steps for λ = ${lambdas.join(', ')}: ${d.map((x) => x.toExponential(3)).join(', ')}`,
    );
    // Adam normalises step sizes, so once the anchor dominates the gradient the distance
    // saturates (λ ≳ 0.01 here): every anchored run stays nearer θ₀ than the unanchored
    // one, and a strong anchor far nearer.
    for (let i = 1; i < d.length; i++) expect(d[i]).toBeLessThan(d[0]);
    expect(d[3]).toBeLessThan(0.5 * d[0]);
  });

  it('cancels between steps and frees what it allocated', async () => {
    const live = rt.engine.pool.getStats().liveBytes;
    const ac = new AbortController();
    const steps: number[] = [];
    const run = personalize(
      rt,
      photo,
      { ...DEFAULT_PERSONALIZE, seed: 5 },
      (e) => {
        if (e.stage === 'tuning') {
          steps.push(e.step);
          if (e.step === 2) ac.abort();
        }
      },
      ac.signal,
    );
    await expect(run).rejects.toThrow(/cancel|abort/i);
    expect(steps).toEqual([1, 2]);
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
  });

  it('stops on a non-finite loss with a clear error and keeps the encoder prediction', async () => {
    const live = rt.engine.pool.getStats().liveBytes;
    const run = personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 6, learningRate: Number.NaN });
    await expect(run).rejects.toThrow(NumericalError);
    await expect(run).rejects.toThrow(/diverged at step 2/);
    const err = (await run.catch((e) => e)) as NumericalError;
    expect(err.fallback.embedding.every(Number.isFinite)).toBe(true);
    expect(err.fallback.lossCurve).toEqual([]);
    expect(rt.engine.pool.getStats().liveBytes).toBe(live);
  });
});

describe('personalize: batch and gradient checkpointing', () => {
  it('checkpointing each UNet block gives the same concept with a lower memory peak (batch 2)', async () => {
    const o = { ...DEFAULT_PERSONALIZE, seed: 8, steps: 2, batch: 2 };
    await personalize(rt, photo, o); // warm: weights uploaded, pipelines compiled
    rt.engine.pool.resetPeak();
    const plain = await personalize(rt, photo, o);
    const peakPlain = rt.engine.pool.getStats().peakLiveBytes;
    rt.engine.pool.resetPeak();
    const ckpt = await personalize(rt, photo, { ...o, checkpointing: true });
    const peakCkpt = rt.engine.pool.getStats().peakLiveBytes;
    console.info(
      `peak pool bytes, batch 2: ${(peakPlain / 2 ** 20).toFixed(2)} MiB plain, ${(peakCkpt / 2 ** 20).toFixed(2)} MiB checkpointed`,
    );
    // Recomputation is exact; only the order in which gradients of the prompt encoding are
    // summed across blocks differs, so agreement is to float32 rounding (which Adam's
    // normalisation amplifies a little for tiny gradients), not bit for bit.
    assertClose(ckpt.lossCurve, plain.lossCurve, { rtol: 1e-6, atol: 0 }, 'loss curve');
    assertClose(ckpt.embedding, plain.embedding, { rtol: 1e-4, atol: 1e-8 }, 'v*');
    assertClose(ckpt.lora[3].B, plain.lora[3].B, { rtol: 1e-4, atol: 1e-8 }, 'B of a LoRA module');
    expect(peakCkpt).toBeLessThan(peakPlain);
  });
});
