// The pipeline benchmark (docs/architecture.md, `likeness bench pipeline`): on the bundled tiny pack,
// the UNet forward, forward+backward and one tuning step (ratio backward/forward), time to
// personalize (encoder + 12 steps), time to generate one image with each UNet runtime, and
// peak GPU pool bytes — all in one process on one adapter.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTinyPack, TINY_SD_SOURCE } from '../src/cli/defaults.ts';
import { DEFAULTS } from '../src/domain/defaults.ts';
import { SAMPLER_LABELS } from '../src/domain/samplers.ts';
import { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import type { LoraPair } from '../src/models/lora.ts';
import { loadPackFromFolder } from '../src/packs/pack-node.ts';
import { generate } from '../src/pipeline/generate.ts';
import { decodeImage } from '../src/image/decode-node.ts';
import { PackRuntime } from '../src/pipeline/pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize, tuningLoss } from '../src/pipeline/personalize.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../src/pipeline/prompt.ts';
import { unet } from '../src/models/unet/unet.ts';

export interface PipelineRow {
  stage: string;
  ms: number;
  note?: string;
}

export interface PipelineBenchReport {
  adapter: string;
  pack: string;
  rows: PipelineRow[];
  ratios: { backwardOverForward: number; tuningStepOverForward: number };
  peakPoolBytes: number;
}

async function median(runs: number, fn: () => Promise<void>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

export async function runPipelineBench(
  o: { runs?: number; log?: (s: string) => void } = {},
): Promise<PipelineBenchReport> {
  const log = o.log ?? (() => {});
  const runs = o.runs ?? 3;
  const engine = await Engine.create();
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(ensureTinyPack(log)));
  const photo = await decodeImage(new Uint8Array(readFileSync(join(TINY_SD_SOURCE, '../../photos/chelsea.png'))));
  const rows: PipelineRow[] = [];
  try {
    const { ops } = rt;
    const u = rt.unet.config;
    const h = rt.manifest.latentSize;
    const targets = rt.encoder!.targets;
    // Fixed inputs: a dual-path, LoRA-carrying UNet call as in tuning.
    const tokens = tokenizeWithPlaceholder(rt, 'a photo of S*', 'S*', 2368);
    const fixed = engine.noGrad(() =>
      engine.scope(() => ({
        zt: engine.keep(engine.full([1, u.in_channels, h, h], 0.1)),
        eps: engine.keep(engine.full([1, u.in_channels, h, h], 0.05)),
        hard: engine.keep(encodePrompt(rt, tokens, null)),
      })),
    );
    const vStar = engine.parameter(await rt.tokenEmbedding(2368), [rt.tokenDim], 'v*');
    const lora = new Map<string, LoraPair<Tensor>>(
      targets.map((t) => [
        t.module,
        {
          A: engine.parameter(new Float32Array(4 * t.in).fill(0.01), [4, t.in]),
          B: engine.parameter(new Float32Array(t.out * 4).fill(0.01), [t.out, 4]),
        },
      ]),
    );
    const theta = { vStar, lora, scale: 1 };
    const forward = () =>
      unet(ops, rt.unet.params, u, {
        sample: fixed.zt,
        timesteps: [500],
        cond: {
          context: encodePrompt(rt, tokens, vStar),
          lora: { layers: lora, scale: 1 },
          dual: { hardContext: fixed.hard, alpha: DEFAULT_PERSONALIZE.blend },
        },
      });
    // warm-up compiles every pipeline once
    await engine.scopeAsync(async () => void (await engine.noGrad(forward).read()));
    engine.pool.resetPeak();
    const fwd = await median(runs, () => engine.scopeAsync(async () => void (await engine.noGrad(forward).read())));
    const fwdBwd = await median(runs, () =>
      engine.scopeAsync(async () => {
        const loss = tuningLoss(ops, rt.text, rt.unet, {
          theta,
          theta0: theta,
          zt: fixed.zt,
          t: 500,
          eps: fixed.eps,
          tokens,
          hardContext: fixed.hard,
          blend: DEFAULT_PERSONALIZE.blend,
          lambdaWeights: 0,
          lambdaEmbedding: 0,
        });
        engine.backward(loss.total);
        await engine.sync();
        for (const p of [vStar, ...[...lora.values()].flatMap((x) => [x.A, x.B])]) {
          p.grad?.dispose();
          p.grad = null;
        }
      }),
    );
    rows.push({ stage: 'dual-path UNet forward (text encoder + 2 paths, LoRA)', ms: fwd });
    rows.push({ stage: 'tuning loss forward + backward', ms: fwdBwd });
    let perStep = 0;
    const t0 = performance.now();
    await personalize(rt, photo, { ...DEFAULT_PERSONALIZE, seed: 0 }, (e) => {
      if (e.stage === 'tuning' && e.step === 1) perStep = performance.now();
      if (e.stage === 'done') perStep = (performance.now() - perStep) / (DEFAULT_PERSONALIZE.steps - 1);
    });
    const personalizeMs = performance.now() - t0;
    rows.push({ stage: 'one tuning step (loop average)', ms: perStep });
    rows.push({ stage: `personalize (encoder + nearest + ${DEFAULT_PERSONALIZE.steps} steps)`, ms: personalizeMs });
    for (const runtime of ['engine', 'onnx'] as const) {
      const g = DEFAULTS.generate;
      const base = {
        prompt: 'a photo of a cat',
        negativePrompt: g.negativePrompt,
        steps: g.steps,
        guidance: g.guidance,
        sampler: g.sampler,
        blend: g.generateBlend,
        batch: g.batch,
        seed: g.seed,
        concept: null,
        runtime,
        previewEvery: 0,
      };
      await generate(rt, { ...base, steps: 1 }); // session creation / compile outside the timing
      const ms = await median(1, async () => void (await generate(rt, base)));
      rows.push({
        stage: `generate one image, ${g.steps} steps ${SAMPLER_LABELS[g.sampler]}, UNet on ${runtime === 'onnx' ? 'onnxruntime-web' : 'the engine'}`,
        ms,
      });
    }
    const peak = engine.pool.getStats().peakLiveBytes;
    fixed.zt.dispose();
    fixed.eps.dispose();
    fixed.hard.dispose();
    vStar.dispose();
    for (const p of lora.values()) {
      p.A.dispose();
      p.B.dispose();
    }
    return {
      adapter: engine.info.name,
      pack: rt.manifest.name,
      rows,
      ratios: { backwardOverForward: (fwdBwd - fwd) / fwd, tuningStepOverForward: perStep / fwd },
      peakPoolBytes: peak,
    };
  } finally {
    rt.dispose();
    engine.destroy();
  }
}

export function formatPipelineTable(r: PipelineBenchReport): string {
  const lines = [`adapter: ${r.adapter}`, `pack: ${r.pack}`, '', '| stage | ms |', '| --- | ---: |'];
  for (const row of r.rows) lines.push(`| ${row.stage} | ${row.ms.toFixed(1)} |`);
  lines.push(
    '',
    `backward / forward: ${r.ratios.backwardOverForward.toFixed(2)} · tuning step / forward: ${r.ratios.tuningStepOverForward.toFixed(2)} · peak GPU pool: ${(r.peakPoolBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  return lines.join('\n');
}
