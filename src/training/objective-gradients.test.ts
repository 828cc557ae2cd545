// The pre-training objective's gradients reach the encoder through every path — v* through
// the text encoder's splice, the L2 and the contrastive op; A_i, B_i through the batched
// per-image LoRA of the dual-path UNet and the ‖ΔW‖² term — checked against central finite
// differences of the same fp32 objective along a direction over each parameter group.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, PHOTOS } from '../../test/tiny-pack.ts';
import { tuningEncoderParamShapes } from '../models/tuning-encoder/tuning-encoder-init.ts';
import { PackRuntime } from '../pipeline/pack-runtime.ts';
import { DEFAULT_TRAIN_ENCODER, EncoderTrainer, fixedDraws } from './train-encoder.ts';
import { listImageFiles, loadTrainingImages, type TrainingImage } from './training-data.ts';

let rt: PackRuntime;
let images: TrainingImage[];
beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
  images = await loadTrainingImages(listImageFiles(PHOTOS), 64);
});
afterAll(() => rt?.dispose());

describe('encoder objective gradients', () => {
  it('match central finite differences along sign(g) for the token head, the A/B heads and the shared layer', async () => {
    const { engine } = rt;
    // Every term weighted so that none hides behind the diffusion loss.
    const trainer = EncoderTrainer.create(rt, images, {
      ...DEFAULT_TRAIN_ENCODER,
      steps: 4,
      batch: 3,
      lr: 1e-3,
      warmup: 0,
      reg: 'contrastive',
      lambdaReg: 1,
      lambdaEmbedding: 0.1,
      lambdaHyper: 1,
    });
    try {
      // Two steps first: B heads are zero at initialisation, which would leave A without gradient.
      await trainer.trainStep();
      await trainer.trainStep();
      const draws = fixedDraws(rt, images.length, 3);
      const { grads } = await trainer.gradients(draws);
      const shapes = tuningEncoderParamShapes(trainer.config, trainer.targets);
      const p = trainer.encoderModel.params;
      const h = 1e-3;
      const report: string[] = [];
      for (const prefix of ['token_head.2.', 'hyper.b_heads.', 'hyper.a_heads.', 'hyper.shared.']) {
        const names = [...grads.keys()].filter((n) => n.startsWith(prefix));
        expect(names.length).toBeGreaterThan(0);
        // d = sign(g): g·d = Σ|g| is large against fp32 rounding of the loss.
        let gd = 0;
        const saved = new Map<string, Float32Array>();
        for (const n of names) {
          for (const g of grads.get(n)!) gd += Math.abs(g);
          saved.set(n, await p.get(n, shapes.get(n)!).read());
        }
        const lossAt = async (step: number) => {
          for (const n of names) {
            const g = grads.get(n)!;
            engine.write(
              p.get(n, shapes.get(n)!),
              saved.get(n)!.map((x, i) => x + step * Math.sign(g[i])),
            );
          }
          return (await trainer.evaluate(draws)).total!;
        };
        const fd = ((await lossAt(h)) - (await lossAt(-h))) / (2 * h);
        for (const n of names) engine.write(p.get(n, shapes.get(n)!), saved.get(n)!);
        report.push(`${prefix} g·d ${gd.toExponential(4)} fd ${fd.toExponential(4)}`);
        // fp32 objective, h = 1e-3 on thousands of weights: observed agreement 1e-6 … 1e-3.
        expect(Math.abs(fd - gd) / gd, `${prefix}: g·d ${gd}, finite differences ${fd}`).toBeLessThan(2e-2);
      }
      console.info(`objective gradients vs finite differences: ${report.join('; ')}`);
    } finally {
      trainer.dispose();
    }
  });
});
