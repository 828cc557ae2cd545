// The scale benchmark (`likeness bench scale`, `npm run bench:scale`): Stable Diffusion 1.5
// shapes (a synthetic random-weight folder, src/packs/synthetic-sd.ts) at 512 px by
// default, phase by phase — open, text encoder, CLIP vision, VAE encode, UNet batch 2, one
// tuning step with checkpointing, VAE decode, a 12-step personalize, a 25-step generate —
// with each phase's wall time, peak GPU pool bytes, largest buffer and process RSS. A phase
// that fails is reported with its error and the others still run. Not a test.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULTS } from '../src/domain/defaults.ts';
import { SAMPLER_LABELS } from '../src/domain/samplers.ts';
import { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { clipVision } from '../src/models/clip/clip-vision.ts';
import type { LoraPair } from '../src/models/lora.ts';
import { unet } from '../src/models/unet/unet.ts';
import { vaeDecode, vaeEncode } from '../src/models/vae/vae.ts';
import { buildPackFromPaths } from '../src/packs/pack-build-node.ts';
import { loadPackFromFolder } from '../src/packs/pack-node.ts';
import { writeSyntheticSd, type SyntheticSdOptions } from '../src/packs/synthetic-sd.ts';
import { generate } from '../src/pipeline/generate.ts';
import { decodeImage } from '../src/image/decode-node.ts';
import { PackRuntime } from '../src/pipeline/pack-runtime.ts';
import { DEFAULT_PERSONALIZE, personalize, tuningLoss } from '../src/pipeline/personalize.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../src/pipeline/prompt.ts';
import { releaseFreeBuffers } from '../src/pipeline/release-memory.ts';

export const SCALE_PHASES = [
  'open',
  'text-encoder',
  'clip-vision',
  'vae-encode',
  'unet-batch2',
  'tuning-step',
  'vae-decode',
  'personalize',
  'generate',
] as const;
export type ScalePhase = (typeof SCALE_PHASES)[number];

export interface ScaleBenchOptions {
  /** Image size in pixels (default 512; the latent is size / 8). */
  size: number;
  phases: ScalePhase[];
  variant: 'sd15' | 'sd21' | 'sd21-base';
  dtype: 'fp16' | 'fp32';
  /** Layer counts below the real ones (smoke runs); undefined = real. */
  unetLayers?: number;
  textLayers?: number;
  visionLayers?: number;
  tuningSteps: number;
  generateSteps: number;
  /** Bind at most this many bytes per storage binding, as a browser's default limit does. */
  bindingLimit?: number;
  /** PackRuntimeOptions.activations. */
  activations: 'auto' | 'f32' | 'f16';
  /** Where the synthetic folder and its pack are kept between runs. */
  dir: string;
  log: (line: string) => void;
}

export interface ScaleRow {
  phase: ScalePhase;
  status: 'ok' | 'error';
  ms: number;
  /** Highest bytes handed out by the GPU buffer pool during the phase (weights included). */
  peakPoolBytes: number;
  largestBufferBytes: number;
  /** All GPU buffers the pool owns at the end of the phase (live + free lists). */
  allocatedBytes: number;
  rssBytes: number;
  /** The process's peak RSS so far. */
  maxRssBytes: number;
  note?: string;
  error?: string;
}

export interface ScaleBenchReport {
  adapter: string;
  maxStorageBufferBindingSize: number;
  /** The most bytes one binding covered in this run (the device's limit or --binding-limit). */
  bindingLimit: number;
  maxBufferSize: number;
  model: string;
  size: number;
  prepare: { folderMs: number | null; packMs: number | null; packBytes: number };
  rows: ScaleRow[];
}

// As the app's worker and `likeness generate` open a pack: the vision tower is uploaded only
// while personalize needs it.

const PHOTO = new URL('../../shared/data/photos/astronaut.png', import.meta.url);

function folderOptions(o: ScaleBenchOptions): Omit<SyntheticSdOptions, 'out'> {
  return {
    variant: o.variant,
    dtype: o.dtype,
    imageSize: o.size,
    unetLayersPerBlock: o.unetLayers,
    textLayers: o.textLayers,
    visionLayers: o.visionLayers,
  };
}

/** The synthetic folder and its pack, made once per option set and reused. */
async function preparePack(
  o: ScaleBenchOptions,
): Promise<{ packDir: string; folderMs: number | null; packMs: number | null }> {
  const fo = folderOptions(o);
  const key = [
    o.variant,
    o.dtype,
    o.size,
    `u${o.unetLayers ?? 'full'}`,
    `t${o.textLayers ?? 'full'}`,
    `v${o.visionLayers ?? 'full'}`,
  ].join('-');
  const root = resolve(o.dir, key);
  const folder = join(root, 'diffusers');
  const packDir = join(root, 'pack');
  const stamp = join(root, 'options.json');
  const want = JSON.stringify(fo);
  let folderMs: number | null = null;
  let packMs: number | null = null;
  if (existsSync(join(packDir, 'manifest.json')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) {
    o.log(`reusing ${packDir}`);
    return { packDir, folderMs, packMs };
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  let t0 = performance.now();
  writeSyntheticSd({ ...fo, out: folder, log: o.log });
  folderMs = performance.now() - t0;
  t0 = performance.now();
  await buildPackFromPaths({ from: folder, out: packDir, name: `synthetic-${key}`, log: o.log });
  packMs = performance.now() - t0;
  // The pack holds its own copy of every file: the source folder is not needed again.
  rmSync(folder, { recursive: true, force: true });
  writeFileSync(stamp, want);
  return { packDir, folderMs, packMs };
}

export async function runScaleBench(o: ScaleBenchOptions): Promise<ScaleBenchReport> {
  const log = o.log;
  const { packDir, folderMs, packMs } = await preparePack(o);
  const engine = await Engine.create(o.bindingLimit ? { maxBindingBytes: o.bindingLimit } : {});
  const limits = engine.device.limits;
  log(
    `adapter: ${engine.info.name}; maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxBufferSize ${limits.maxBufferSize}, bound at most ${engine.maxBindingBytes}`,
  );
  const rows: ScaleRow[] = [];
  const want = new Set(o.phases);
  const openOptions = { deferImageEncoder: true, activations: o.activations };
  let rt: PackRuntime | null = null;
  const photo = await decodeImage(new Uint8Array(readFileSync(PHOTO)));

  const measure = async (phase: ScalePhase, run: () => Promise<string | void>) => {
    if (!want.has(phase)) return;
    // Free lists of the last phase go back to the device, so each phase's allocation is its own.
    try {
      await releaseFreeBuffers(engine);
    } catch {
      // the last phase's error was already recorded
    }
    engine.pool.resetPeak();
    log(`${phase} …`);
    const t0 = performance.now();
    let row: Partial<ScaleRow>;
    try {
      const note = await run();
      await engine.sync();
      row = { status: 'ok', ...(note ? { note } : {}) };
    } catch (e) {
      row = { status: 'error', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    const ms = performance.now() - t0;
    const s = engine.pool.getStats();
    const r: ScaleRow = {
      phase,
      ms,
      peakPoolBytes: s.peakLiveBytes,
      largestBufferBytes: s.largestBufferBytes,
      allocatedBytes: s.allocatedBytes,
      rssBytes: process.memoryUsage().rss,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      ...row,
    } as ScaleRow;
    rows.push(r);
    log(
      `${phase}: ${r.status} in ${(ms / 1000).toFixed(1)} s, peak pool ${gib(r.peakPoolBytes)}, RSS ${gib(r.rssBytes)}${r.error ? ` — ${r.error.split('\n')[0]}` : ''}`,
    );
  };

  try {
    // open always runs: every other phase needs the runtime
    const openPhase = async () => {
      rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir), openOptions);
      return `${(rt.residentBytes / 2 ** 30).toFixed(2)} GiB resident after open`;
    };
    if (want.has('open')) await measure('open', openPhase);
    else rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir), openOptions);
    const r = rt as unknown as PackRuntime;
    const { ops } = r;
    const u = r.unet.config;
    const h = r.manifest.latentSize;
    const S = r.manifest.imageSize;
    const tokens = tokenizeWithPlaceholder(r, 'a photo of S* on a beach', 'S*', r.tokenizer.encode('cat')[0] ?? 0);

    await measure('text-encoder', async () => {
      await engine.noGrad(() => engine.scopeAsync(async () => encodePrompt(r, tokens, null).read()));
    });
    await measure('clip-vision', async () => {
      const c = r.vision.config;
      await r.ensureImageEncoder();
      await engine.noGrad(() =>
        engine.scopeAsync(async () =>
          clipVision(ops, r.vision.params, c, engine.full([1, 3, c.image_size, c.image_size], 0.1)).imageEmbeds.read(),
        ),
      );
      r.releaseImageEncoder();
      return 'uploads the deferred tower, then frees it';
    });
    await measure('vae-encode', async () => {
      await engine.noGrad(() =>
        engine.scopeAsync(async () =>
          vaeEncode(ops, r.vae.params, r.vae.config, engine.full([1, 3, S, S], 0.1)).mean.read(),
        ),
      );
      return 'one image';
    });
    await measure('unet-batch2', async () => {
      await engine.noGrad(() =>
        engine.scopeAsync(async () => {
          const ctx = encodePrompt(r, tokens, null);
          return unet(ops, r.unet.params, u, {
            sample: engine.full([2, u.in_channels, h, h], 0.1),
            timesteps: [500, 500],
            cond: { context: ops.concat([ctx, ctx], 0), lora: null, dual: null },
            // as generate runs it: each block frees its intermediates when it returns
            checkpointing: true,
          }).read();
        }),
      );
      return 'as in generate (blocks as segments)';
    });
    await measure('tuning-step', async () => {
      const rank = r.manifest.architecture.lora.rank;
      const vStar = engine.parameter(await r.tokenEmbedding(tokens.ids[tokens.slots[0]]), [r.tokenDim], 'v*');
      const lora = new Map<string, LoraPair<Tensor>>(
        r.loraTargets.map((t) => [
          t.module,
          {
            A: engine.parameter(new Float32Array(rank * t.in).fill(0.01), [rank, t.in]),
            B: engine.parameter(new Float32Array(t.out * rank), [t.out, rank]),
          },
        ]),
      );
      const params = [vStar, ...[...lora.values()].flatMap((p) => [p.A, p.B])];
      try {
        await engine.scopeAsync(async () => {
          const hard = engine.noGrad(() => encodePrompt(r, tokens, null));
          const theta = { vStar, lora, scale: r.manifest.architecture.lora.alpha / rank };
          const loss = tuningLoss(ops, r.text, r.unet, {
            theta,
            theta0: theta,
            zt: engine.full([1, u.in_channels, h, h], 0.1),
            t: 500,
            eps: engine.full([1, u.in_channels, h, h], 0.05),
            tokens,
            hardContext: hard,
            blend: DEFAULT_PERSONALIZE.blend,
            lambdaWeights: 0,
            lambdaEmbedding: 0,
            checkpointing: true,
          });
          engine.backward(loss.total);
          const v = (await loss.total.read())[0];
          if (!Number.isFinite(v)) throw new Error(`tuning loss is ${v}`);
        });
      } finally {
        engine.clearTape();
        for (const p of params) {
          p.grad?.dispose();
          p.dispose();
        }
      }
      return 'batch 1, checkpointing';
    });
    await measure('vae-decode', async () => {
      await engine.noGrad(() =>
        engine.scopeAsync(async () =>
          vaeDecode(ops, r.vae.params, r.vae.config, engine.full([1, 4, h, h], 0.1)).read(),
        ),
      );
      return 'one image';
    });
    await measure('personalize', async () => {
      const c = await personalize(r, photo, {
        ...DEFAULT_PERSONALIZE,
        classWord: 'person',
        steps: o.tuningSteps,
        seed: 0,
      });
      return `${o.tuningSteps} steps, final loss ${c.lossCurve.at(-1)?.toFixed(4) ?? '—'}`;
    });
    await measure('generate', async () => {
      const [img] = await generate(r, {
        prompt: 'a photo of a cat',
        negativePrompt: DEFAULTS.generate.negativePrompt,
        steps: o.generateSteps,
        guidance: DEFAULTS.generate.guidance,
        sampler: DEFAULTS.generate.sampler,
        blend: DEFAULTS.generate.generateBlend,
        batch: 1,
        seed: 0,
        concept: null,
        previewEvery: 0,
      });
      if (!img.latent.every(Number.isFinite)) throw new Error('the final latent is not finite');
      return `${o.generateSteps} steps ${SAMPLER_LABELS[DEFAULTS.generate.sampler]}, batch 1 (CFG: UNet batch 2)`;
    });
    const packBytes = r.manifest.files.reduce((n, f) => n + f.bytes, 0);
    return {
      adapter: engine.info.name,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      bindingLimit: engine.maxBindingBytes,
      maxBufferSize: limits.maxBufferSize,
      model: `${o.variant} ${o.dtype}, ${(rt as PackRuntime).halfActivations ? 'fp16' : 'fp32'} activations${o.unetLayers || o.textLayers || o.visionLayers ? ` (layers: unet ${o.unetLayers ?? 'full'}, text ${o.textLayers ?? 'full'}, vision ${o.visionLayers ?? 'full'})` : ''}`,
      size: o.size,
      prepare: { folderMs, packMs, packBytes },
      rows,
    };
  } finally {
    rt?.dispose();
    engine.destroy();
  }
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

export function formatScaleTable(r: ScaleBenchReport): string {
  const lines = [
    `adapter: ${r.adapter} (maxStorageBufferBindingSize ${r.maxStorageBufferBindingSize}, maxBufferSize ${r.maxBufferSize}; bound at most ${r.bindingLimit} bytes per binding)`,
    `model: ${r.model}, ${r.size} px (latent ${r.size / 8}×${r.size / 8}); pack ${(r.prepare.packBytes / 1e9).toFixed(2)} GB`,
    '',
    '| phase | status | wall | peak pool | largest buffer | pool allocated | RSS | peak RSS | note |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of r.rows) {
    const note = row.status === 'error' ? (row.error ?? '').split('\n')[0].slice(0, 160) : (row.note ?? '');
    lines.push(
      `| ${row.phase} | ${row.status} | ${(row.ms / 1000).toFixed(1)} s | ${gib(row.peakPoolBytes)} | ${(row.largestBufferBytes / 2 ** 20).toFixed(0)} MiB | ${gib(row.allocatedBytes)} | ${gib(row.rssBytes)} | ${gib(row.maxRssBytes)} | ${note.replace(/\|/g, '\\|')} |`,
    );
  }
  return lines.join('\n');
}

/** `likeness bench scale [options]` */
export async function scaleCommand(argv: string[]): Promise<number> {
  const o: ScaleBenchOptions = {
    size: 512,
    phases: [...SCALE_PHASES],
    variant: 'sd15',
    dtype: 'fp16',
    tuningSteps: DEFAULTS.personalize.steps,
    generateSteps: DEFAULTS.generate.steps,
    activations: 'auto',
    dir: 'bench/.scale',
    log: (line) => process.stderr.write(`${line}\n`),
  };
  let out = 'bench/results-scale.json';
  const int = (v: string, flag: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`bench scale: ${flag} wants a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const v = () => {
        const x = argv[++i];
        if (x === undefined) throw new Error(`bench scale: ${a} needs a value`);
        return x;
      };
      if (a === '--size') o.size = int(v(), a);
      else if (a === '--phases') {
        const list = v().split(',').filter(Boolean);
        for (const p of list)
          if (!(SCALE_PHASES as readonly string[]).includes(p))
            throw new Error(`bench scale: unknown phase '${p}' (phases: ${SCALE_PHASES.join(', ')})`);
        o.phases = list as ScalePhase[];
      } else if (a === '--variant') {
        const x = v();
        if (x !== 'sd15' && x !== 'sd21' && x !== 'sd21-base')
          throw new Error(`bench scale: --variant is sd15, sd21 or sd21-base, got '${x}'`);
        o.variant = x;
      } else if (a === '--fp32') o.dtype = 'fp32';
      else if (a === '--unet-layers') o.unetLayers = int(v(), a);
      else if (a === '--text-layers') o.textLayers = int(v(), a);
      else if (a === '--vision-layers') o.visionLayers = int(v(), a);
      else if (a === '--tuning-steps') o.tuningSteps = int(v(), a);
      else if (a === '--steps') o.generateSteps = int(v(), a);
      else if (a === '--binding-limit') o.bindingLimit = int(v(), a);
      else if (a === '--activations') {
        const x = v();
        if (x !== 'auto' && x !== 'f32' && x !== 'f16')
          throw new Error(`bench scale: --activations is auto, f32 or f16, got '${x}'`);
        o.activations = x;
      } else if (a === '--dir') o.dir = v();
      else if (a === '--out') out = v();
      else throw new Error(`bench scale: unknown argument '${a}'`);
    }
    if (o.size % 64 !== 0)
      throw new Error(
        `bench scale: --size must be a multiple of 64 (latent divisible by the UNet's 8× downsampling), got ${o.size}`,
      );
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const report = await runScaleBench(o);
  process.stdout.write(`${formatScaleTable(report)}\n`);
  mkdirSync(resolve(out, '..'), { recursive: true });
  writeFileSync(resolve(out), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`wrote ${resolve(out)}\n`);
  return report.rows.some((row) => row.status === 'error') ? 1 : 0;
}
