// Pre-training the tuning encoder (paper §3.2–3.3, App. A–C) on the engine, in Node.
// Frozen: CLIP vision, text encoder, UNet, VAE (from a pack). Trainable: the encoder's
// parameters. Each optimizer step draws `accum` micro-batches of `batch` distinct images
// (whole batches of a seeded per-epoch order), augments them (random 7/8…1 square crop, mirror), and
// minimises encoder-objective.ts's loss with Adam; the learning rate warms up linearly and
// then decays on a cosine. Every random choice comes from Philox streams keyed by the seed
// and the step number, so a run resumed from a checkpoint repeats the uninterrupted run bit
// for bit.
import { mkdirSync, readFileSync, renameSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../domain/defaults.ts';
import { Adam } from '../engine/adam.ts';
import type { Tensor } from '../engine/tensor.ts';
import { scale } from '../kernels/binary/binary.ts';
import { MapParamSource, Params } from '../models/params.ts';
import { initTuningEncoder, tuningEncoderParamShapes } from '../models/tuning-encoder/tuning-encoder-init.ts';
import {
  loraTargets,
  type LoraTarget,
  type TuningEncoderConfig,
} from '../models/tuning-encoder/tuning-encoder-config.ts';
import { defaultTuningEncoderConfig } from '../packs/build-pack.ts';
import { parseSafetensors } from '../packs/safetensors.ts';
import type { PackRuntime } from '../pipeline/pack-runtime.ts';
import { TUNING_TEMPLATES } from '../pipeline/personalize.ts';
import { encodePrompt, tokenizeWithPlaceholder } from '../pipeline/prompt.ts';
import { PhiloxRandom } from '../pipeline/random.ts';
import { createScheduler } from '../pipeline/schedulers/index.ts';
import {
  encoderFiles,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointState,
  type DataOrderState,
  type HostTensor,
} from './encoder-checkpoint.ts';
import {
  encoderObjective,
  LOSS_TERMS,
  type EncoderModel,
  type LossTerm,
  type ObjectiveConstants,
  type ObjectiveSettings,
  type SampleDraw,
} from './encoder-objective.ts';
import { learningRateAt } from './lr-schedule.ts';
import { epochOrder, samplesAt, samplesPerEpoch, type TrainingImage } from './training-data.ts';

export interface TrainEncoderOptions extends ObjectiveSettings {
  /** Optimizer steps. */
  steps: number;
  /** Images per micro-batch (the contrastive negatives come from the same micro-batch). */
  batch: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accum: number;
  /** Peak learning rate (paper: 1e-4). */
  lr: number;
  /** Linear warm-up steps. */
  warmup: number;
  /** Seed of the data order, augmentation, timesteps and noise. */
  seed: number;
  /** Seed of the encoder's initialisation (when not starting from given weights). */
  initSeed: number;
}

export const DEFAULT_TRAIN_ENCODER: TrainEncoderOptions = {
  steps: 1000,
  batch: 4,
  accum: 1,
  lr: 1e-4,
  warmup: 100,
  seed: 0,
  initSeed: 0,
  reg: 'contrastive',
  lambdaEmbedding: 1e-3,
  lambdaReg: 1e-2,
  lambdaHyper: 1e-2,
  tau: 0.07,
  positives: 5,
  // Pre-training blends both paths as tuning does (Eq. 3, the tuning α of paper App. B).
  blend: DEFAULTS.personalize.tuningBlend,
  placeholder: DEFAULTS.personalize.placeholder,
};

export type LossValues = Record<LossTerm, number | null>;

export interface StepRecord {
  /** Optimizer steps completed (1-based after the update). */
  step: number;
  steps: number;
  lr: number;
  /** Mean over the micro-batches of each term. */
  losses: LossValues;
  /** Image ids of the step's samples, in draw order. */
  images: string[];
  seconds: number;
}

/** Options that change the trajectory: a resumed run must keep them. */
const TRAJECTORY_KEYS: (keyof TrainEncoderOptions)[] = [
  'batch',
  'accum',
  'lr',
  'warmup',
  'seed',
  'steps',
  'reg',
  'lambdaEmbedding',
  'lambdaReg',
  'lambdaHyper',
  'tau',
  'positives',
  'blend',
  'placeholder',
];

/** Stream 0 is left alone; optimizer step s draws from stream 1 + s. */
const STEP_STREAM_BASE = 1;

function checkOptions(o: TrainEncoderOptions, images: number): void {
  const int = (k: keyof TrainEncoderOptions, min: number) => {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < min) throw new Error(`train-encoder: ${k} must be an integer ≥ ${min}, got ${v}`);
  };
  int('steps', 1);
  int('batch', 1);
  int('accum', 1);
  int('warmup', 0);
  int('positives', 1);
  if (o.warmup >= o.steps)
    throw new Error(`train-encoder: warm-up (${o.warmup}) must be shorter than the run (${o.steps} steps)`);
  if (!(o.lr > 0)) throw new Error(`train-encoder: lr must be > 0, got ${o.lr}`);
  if (!(o.blend >= 0 && o.blend <= 1)) throw new Error(`train-encoder: blend must be in [0, 1], got ${o.blend}`);
  if (!(o.tau > 0)) throw new Error(`train-encoder: tau must be > 0, got ${o.tau}`);
  for (const k of ['lambdaEmbedding', 'lambdaReg', 'lambdaHyper'] as const) {
    if (!(o[k] >= 0)) throw new Error(`train-encoder: ${k} must be ≥ 0, got ${o[k]}`);
  }
  if (images < o.batch)
    throw new Error(
      `train-encoder: ${images} image(s) for a batch of ${o.batch}: a batch must not repeat an image (its negatives would be itself)`,
    );
  if (o.reg === 'contrastive' && o.batch < 2)
    throw new Error(
      'train-encoder: the contrastive loss needs a batch of at least 2 (the negatives are the other images)',
    );
}

export function encoderConfigFor(rt: PackRuntime): TuningEncoderConfig {
  return defaultTuningEncoderConfig(rt.manifest.architecture);
}

/** Fixed evaluation samples: images 0…n−1 (cyclic), no augmentation, spread t, seeded ε. */
export function fixedDraws(rt: PackRuntime, images: number, n: number, seed = 12345): SampleDraw[] {
  const T = createScheduler('ddim', rt.manifest.scheduler).alphasCumprod.length;
  const latent = rt.unet.config.in_channels * rt.manifest.latentSize ** 2;
  return Array.from({ length: n }, (_, i) => ({
    image: i % images,
    augment: { zoom: 1, offsetX: 0.5, offsetY: 0.5, flip: 0 },
    t: Math.floor(((i + 0.5) / n) * T),
    template: i % TUNING_TEMPLATES.length,
    noise: new PhiloxRandom(seed + i).normals(latent),
  }));
}

export class EncoderTrainer {
  private stepsDone: number;
  private readonly model: EncoderModel;

  private constructor(
    readonly rt: PackRuntime,
    readonly images: readonly TrainingImage[],
    readonly options: TrainEncoderOptions,
    readonly config: TuningEncoderConfig,
    readonly targets: readonly LoraTarget[],
    /** Parameter names in Adam's order (sorted). */
    private readonly names: readonly string[],
    private readonly params: Map<string, Tensor>,
    private readonly opt: Adam,
    private readonly constants: ObjectiveConstants,
    step: number,
  ) {
    this.stepsDone = step;
    this.model = { config, targets, params: new Params(new MapParamSource(params, (t) => t.shape)) };
  }

  /** A fresh run: the encoder from `init` (config + weights) or a seeded initialisation. */
  static create(
    rt: PackRuntime,
    images: readonly TrainingImage[],
    options: TrainEncoderOptions,
    init?: { config: TuningEncoderConfig; weights: ReadonlyMap<string, HostTensor> },
  ): EncoderTrainer {
    checkOptions(options, images.length);
    const targets = loraTargets(rt.unet.config);
    const config = init?.config ?? encoderConfigFor(rt);
    const weights = init?.weights ?? initTuningEncoder(config, targets, options.initSeed);
    return EncoderTrainer.build(rt, images, options, config, targets, weights, null, 0);
  }

  /** Continue the run saved in `checkpoint` (the same images, in the same order). */
  static resume(
    rt: PackRuntime,
    images: readonly TrainingImage[],
    checkpoint: Uint8Array,
    options?: TrainEncoderOptions,
  ): EncoderTrainer {
    const c = readCheckpoint<TrainEncoderOptions>(checkpoint);
    const o = options ?? c.options;
    for (const k of TRAJECTORY_KEYS) {
      if (k === 'steps') continue; // a longer run may continue (its cosine schedule then differs from step `c.step` on)
      if (JSON.stringify(o[k]) !== JSON.stringify(c.options[k])) {
        throw new Error(
          `resume: ${k} is ${JSON.stringify(o[k])} but the checkpoint was trained with ${JSON.stringify(c.options[k])}`,
        );
      }
    }
    checkOptions(o, images.length);
    const ids = images.map((i) => i.id);
    if (JSON.stringify(ids) !== JSON.stringify(c.images)) {
      throw new Error(
        `resume: the training images differ from the checkpoint's (${c.images.length} images: ${c.images.slice(0, 3).join(', ')}…)`,
      );
    }
    if (c.pack.hash !== rt.hash)
      throw new Error(
        `resume: the checkpoint was trained on pack "${c.pack.name}" (${c.pack.hash.slice(0, 12)}…), not "${rt.manifest.name}"`,
      );
    if (c.rng.seed !== o.seed || c.rng.stream !== STEP_STREAM_BASE + c.step)
      throw new Error("resume: the checkpoint's generator state does not match its step and seed");
    const expected = dataOrderAt(o, ids.length, c.step);
    if (JSON.stringify(expected) !== JSON.stringify(c.dataOrder))
      throw new Error("resume: the checkpoint's data order does not match its seed and image list");
    if (c.step >= o.steps) throw new Error(`resume: the checkpoint is at step ${c.step}, the run has ${o.steps} steps`);
    const targets = loraTargets(rt.unet.config);
    return EncoderTrainer.build(
      rt,
      images,
      o,
      c.config,
      targets,
      c.params,
      { m: c.adamM, v: c.adamV, step: c.adamStep },
      c.step,
    );
  }

  private static build(
    rt: PackRuntime,
    images: readonly TrainingImage[],
    options: TrainEncoderOptions,
    config: TuningEncoderConfig,
    targets: readonly LoraTarget[],
    weights: ReadonlyMap<string, HostTensor>,
    adam: { m: ReadonlyMap<string, HostTensor>; v: ReadonlyMap<string, HostTensor>; step: number } | null,
    step: number,
  ): EncoderTrainer {
    const { engine } = rt;
    const shapes = tuningEncoderParamShapes(config, targets);
    const names = [...shapes.keys()].sort();
    const params = new Map<string, Tensor>();
    const owned: Tensor[] = [];
    let opt: Adam | null = null;
    try {
      for (const name of names) {
        const w = weights.get(name);
        const shape = shapes.get(name)!;
        if (!w) throw new Error(`encoder weights: missing ${name}`);
        if (w.shape.join() !== shape.join())
          throw new Error(`encoder weights: ${name} is [${w.shape}], the config implies [${shape}]`);
        const p = engine.parameter(w.data, shape, name);
        owned.push(p);
        params.set(name, p);
      }
      opt = new Adam(
        engine,
        names.map((n) => params.get(n)!),
        { lr: options.lr },
      );
      if (adam) {
        const { m, v } = opt.state();
        names.forEach((n, i) => {
          const mi = adam.m.get(n)!;
          const vi = adam.v.get(n)!;
          if (mi.data.length !== m[i].size || vi.data.length !== v[i].size)
            throw new Error(`encoder checkpoint: Adam state of ${n} has the wrong size`);
          engine.write(m[i], mi.data);
          engine.write(v[i], vi.data);
        });
        opt.setStep(adam.step);
      }
      const emptyContext = engine.keep(
        engine.noGrad(() => engine.scope(() => encodePrompt(rt, tokenizeWithPlaceholder(rt, '', null, 0), null))),
      );
      const constants = { emptyContext, alphasCumprod: createScheduler('ddim', rt.manifest.scheduler).alphasCumprod };
      return new EncoderTrainer(rt, images, options, config, targets, names, params, opt, constants, step);
    } catch (e) {
      opt?.dispose();
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  /** The encoder being trained (its parameters are the live engine tensors). */
  get encoderModel(): EncoderModel {
    return this.model;
  }

  /** Optimizer steps completed. */
  get step(): number {
    return this.stepsDone;
  }

  /** The samples of optimizer step `step`, one array per micro-batch. */
  drawsFor(step: number): SampleDraw[][] {
    const o = this.options;
    const rng = new PhiloxRandom(o.seed, { stream: STEP_STREAM_BASE + step });
    const T = this.constants.alphasCumprod.length;
    const latent = this.rt.unet.config.in_channels * this.rt.manifest.latentSize ** 2;
    const perStep = o.batch * o.accum;
    const idx = samplesAt(o.seed, this.images.length, o.batch, step * perStep, perStep);
    return Array.from({ length: o.accum }, (_, m) =>
      idx.slice(m * o.batch, (m + 1) * o.batch).map((image) => {
        const [zoom, offsetX, offsetY, flip, ut, up] = rng.uniforms(6);
        return {
          image,
          augment: { zoom, offsetX, offsetY, flip },
          t: Math.min(T - 1, Math.floor(ut * T)),
          template: Math.min(TUNING_TEMPLATES.length - 1, Math.floor(up * TUNING_TEMPLATES.length)),
          noise: rng.normals(latent),
        };
      }),
    );
  }

  /** One optimizer step over `accum` micro-batches. */
  async trainStep(): Promise<StepRecord> {
    const { engine } = this.rt;
    const o = this.options;
    if (this.stepsDone >= o.steps) throw new Error(`train-encoder: all ${o.steps} steps are done`);
    const t0 = performance.now();
    const micro = this.drawsFor(this.stepsDone);
    const sums: Record<LossTerm, number | null> = Object.fromEntries(LOSS_TERMS.map((k) => [k, null])) as LossValues;
    for (const draws of micro) {
      const values = await engine.scopeAsync(async () => {
        const out = await encoderObjective(this.rt, this.model, this.images, draws, o, this.constants);
        // Gradients of the mean over micro-batches accumulate in .grad.
        engine.backward(o.accum === 1 ? out.total : scale(out.total, 1 / o.accum));
        return readTerms(out.total, out.terms);
      });
      for (const k of LOSS_TERMS) if (values[k] !== null) sums[k] = (sums[k] ?? 0) + values[k] / o.accum;
    }
    if (!Number.isFinite(sums.total)) {
      this.opt.zeroGrad();
      throw new Error(
        `train-encoder: the loss is ${sums.total} at step ${this.stepsDone + 1}; lower the learning rate or resume from the last checkpoint`,
      );
    }
    const lr = learningRateAt(this.stepsDone, o.steps, o.lr, o.warmup);
    this.opt.step(lr);
    this.opt.zeroGrad();
    this.stepsDone++;
    return {
      step: this.stepsDone,
      steps: o.steps,
      lr,
      losses: sums,
      images: micro.flat().map((d) => this.images[d.image].id),
      seconds: (performance.now() - t0) / 1000,
    };
  }

  /** The objective on fixed samples (one batch), without touching the run's state. */
  async evaluate(draws: readonly SampleDraw[]): Promise<LossValues> {
    const { engine } = this.rt;
    return engine.noGrad(() =>
      engine.scopeAsync(async () => {
        const out = await encoderObjective(this.rt, this.model, this.images, draws, this.options, this.constants);
        return readTerms(out.total, out.terms);
      }),
    );
  }

  /** The objective's gradient on fixed samples (one batch), by parameter name; the run's state is untouched. */
  async gradients(draws: readonly SampleDraw[]): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { engine } = this.rt;
    if (this.names.some((n) => this.params.get(n)!.grad)) throw new Error('gradients: a step is in progress');
    try {
      const loss = await engine.scopeAsync(async () => {
        const out = await encoderObjective(this.rt, this.model, this.images, draws, this.options, this.constants);
        engine.backward(out.total);
        return (await out.total.read())[0];
      });
      const grads = new Map<string, Float32Array>();
      for (const n of this.names) {
        const g = this.params.get(n)!.grad;
        grads.set(n, g ? await g.read() : new Float32Array(this.params.get(n)!.size));
      }
      return { loss, grads };
    } finally {
      this.opt.zeroGrad();
    }
  }

  /** v* of each sample: (n · token_dim), row-major. */
  async predictEmbeddings(draws: readonly SampleDraw[]): Promise<Float32Array> {
    const { engine } = this.rt;
    return engine.noGrad(() =>
      engine.scopeAsync(async () =>
        (
          await encoderObjective(this.rt, this.model, this.images, draws, this.options, this.constants)
        ).embedding.read(),
      ),
    );
  }

  /** The encoder's parameters on the CPU, by name (sorted). */
  async weights(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const n of this.names) {
      const p = this.params.get(n)!;
      out.set(n, { shape: [...p.shape], data: await p.read() });
    }
    return out;
  }

  /** A checkpoint of the run after `step` steps. */
  async checkpoint(): Promise<Uint8Array> {
    const { m, v } = this.opt.state();
    const adamM = new Map<string, HostTensor>();
    const adamV = new Map<string, HostTensor>();
    for (const [i, n] of this.names.entries()) {
      adamM.set(n, { shape: [...m[i].shape], data: await m[i].read() });
      adamV.set(n, { shape: [...v[i].shape], data: await v[i].read() });
    }
    const state: CheckpointState<TrainEncoderOptions> = {
      step: this.stepsDone,
      adamStep: this.opt.stepCount,
      options: this.options,
      config: this.config,
      images: this.images.map((i) => i.id),
      rng: { generator: 'philox4x32-10', seed: this.options.seed, stream: STEP_STREAM_BASE + this.stepsDone },
      dataOrder: dataOrderAt(this.options, this.images.length, this.stepsDone),
      pack: { name: this.rt.manifest.name, hash: this.rt.hash },
      params: await this.weights(),
      adamM,
      adamV,
    };
    return writeCheckpoint(state);
  }

  /** The encoder as `likeness pack --encoder` reads it. */
  async exportEncoder(): Promise<{ configJson: string; weights: Uint8Array }> {
    return encoderFiles(
      this.config,
      await this.weights(),
      `trained by likeness train-encoder: ${this.stepsDone} steps, reg ${this.options.reg}, pack ${this.rt.manifest.name}`,
    );
  }

  dispose(): void {
    this.opt.dispose();
    for (const p of this.params.values()) p.dispose();
    this.constants.emptyContext.dispose();
  }
}

function dataOrderAt(o: TrainEncoderOptions, n: number, step: number): DataOrderState {
  const consumed = step * o.batch * o.accum;
  const perEpoch = samplesPerEpoch(n, o.batch);
  const epoch = Math.floor(consumed / perEpoch);
  return { consumed, epoch, position: consumed - epoch * perEpoch, order: epochOrder(o.seed, epoch, n) };
}

async function readTerms(total: Tensor, terms: Record<string, Tensor | null>): Promise<LossValues> {
  const out = { total: (await total.read())[0] } as LossValues;
  for (const [k, t] of Object.entries(terms)) out[k as LossTerm] = t ? (await t.read())[0] : null;
  return out;
}

// ------------------------------------------------------------------ the run (CLI)

export interface TrainRunOptions {
  out: string;
  /** Checkpoint file to continue from. */
  resume?: string;
  /** Start from these encoder weights (a folder with config.json + model.safetensors). */
  init?: string;
  /** Checkpoint every this many steps (and at the end). */
  saveEvery: number;
  /** Evaluate on fixed samples every this many steps (0: never). */
  evalEvery: number;
  evalSamples: number;
  log: (line: string) => void;
}

function atomicWrite(path: string, bytes: Uint8Array | string): void {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

const fmt = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;

/**
 * Train (or continue) and write, under `out`: log.jsonl (one line per step, every loss
 * term), checkpoints/step-NNNNNN.safetensors, and the encoder as config.json +
 * model.safetensors (after every checkpoint, so a stopped run leaves a usable encoder).
 */
export async function trainEncoderRun(
  rt: PackRuntime,
  images: readonly TrainingImage[],
  options: TrainEncoderOptions,
  run: TrainRunOptions,
): Promise<StepRecord[]> {
  mkdirSync(join(run.out, 'checkpoints'), { recursive: true });
  let trainer: EncoderTrainer;
  if (run.resume) {
    trainer = EncoderTrainer.resume(rt, images, new Uint8Array(readFileSync(run.resume)), options);
    run.log(`resumed from ${run.resume} at step ${trainer.step}`);
  } else if (run.init) {
    const config = JSON.parse(readFileSync(join(run.init, 'config.json'), 'utf8')) as TuningEncoderConfig;
    const st = parseSafetensors(new Uint8Array(readFileSync(join(run.init, 'model.safetensors'))));
    const weights = new Map(st.names().map((n) => [n, { shape: [...st.info(n).shape], data: st.float32(n) }]));
    trainer = EncoderTrainer.create(rt, images, options, { config, weights });
    run.log(`starting from the encoder in ${run.init}`);
  } else {
    trainer = EncoderTrainer.create(rt, images, options);
  }
  const records: StepRecord[] = [];
  // One fixed batch of distinct images (a repeated image would be its own contrastive negative).
  const evalDraws =
    run.evalEvery > 0
      ? fixedDraws(rt, images.length, Math.min(images.length, Math.max(options.batch, run.evalSamples)))
      : [];
  const logPath = join(run.out, 'log.jsonl');
  const save = async () => {
    const name = `step-${String(trainer.step).padStart(6, '0')}.safetensors`;
    atomicWrite(join(run.out, 'checkpoints', name), await trainer.checkpoint());
    const { configJson, weights } = await trainer.exportEncoder();
    atomicWrite(join(run.out, 'model.safetensors'), weights);
    atomicWrite(join(run.out, 'config.json'), configJson);
    run.log(`saved checkpoints/${name} and the encoder (config.json, model.safetensors)`);
  };
  try {
    const first = trainer.step;
    const t0 = performance.now();
    while (trainer.step < options.steps) {
      const r = await trainer.trainStep();
      const line: Record<string, unknown> = {
        step: r.step,
        lr: r.lr,
        ...r.losses,
        images: r.images,
        seconds: r.seconds,
      };
      if (run.evalEvery > 0 && (r.step % run.evalEvery === 0 || r.step === options.steps)) {
        const ev = await trainer.evaluate(evalDraws);
        line.eval = ev;
      }
      appendFileSync(logPath, JSON.stringify(line) + '\n');
      records.push(r);
      const elapsed = (performance.now() - t0) / 1000;
      const done = r.step - first;
      const eta = (elapsed / done) * (options.steps - r.step);
      const l = r.losses;
      const parts = [`loss ${l.total!.toFixed(4)}`, `diff ${l.diffusion!.toFixed(4)}`];
      if (l.embeddingL2 !== null) parts.push(`‖v*‖² ${l.embeddingL2.toFixed(4)}`);
      if (l.nnCosine !== null) parts.push(`nn ${l.nnCosine.toFixed(4)}`);
      if (l.contrastive !== null) parts.push(`Lc ${l.contrastive.toFixed(4)}`);
      if (l.hyper !== null) parts.push(`‖ΔW‖² ${l.hyper.toExponential(2)}`);
      const ev = line.eval as LossValues | undefined;
      run.log(
        `step ${r.step}/${options.steps}  ${parts.join('  ')}  lr ${r.lr.toExponential(2)}` +
          `${ev ? `  eval ${ev.total!.toFixed(4)}` : ''}  ${r.seconds.toFixed(1)} s/step  ETA ${fmt(eta)}`,
      );
      if (r.step % run.saveEvery === 0 || r.step === options.steps) await save();
    }
    return records;
  } finally {
    trainer.dispose();
  }
}
