// likeness train-encoder --pack <dir> --images <folder|list> [--boxes boxes.json] --steps N --batch B
//                        [--accum n] [--lr 1e-4] [--warmup W] [--reg none|l2|nn-cosine|contrastive]
//                        [--tau 0.07] [--positives 5] [--lambda-emb x] [--lambda-reg x] [--lambda-hyper x]
//                        [--blend 0.25] [--seed 0] [--init-seed 0] [--init <encoder dir>]
//                        [--save-every n] [--eval-every n] --out <dir> [--resume <checkpoint>]
import { readFileSync } from 'node:fs';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { readCheckpoint } from '../../training/encoder-checkpoint.ts';
import { EMBEDDING_REGULARIZERS, type EmbeddingRegularizer } from '../../training/encoder-objective.ts';
import { DEFAULT_TRAIN_ENCODER, trainEncoderRun, type TrainEncoderOptions } from '../../training/train-encoder.ts';
import { listImageFiles, loadTrainingImages, parseBoxes } from '../../training/training-data.ts';
import { parseArgs, UsageError, type OptionSpecs } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';

/** CLI flag → option (numbers). */
const NUMERIC: [string, keyof TrainEncoderOptions][] = [
  ['steps', 'steps'],
  ['batch', 'batch'],
  ['accum', 'accum'],
  ['lr', 'lr'],
  ['warmup', 'warmup'],
  ['tau', 'tau'],
  ['positives', 'positives'],
  ['lambda-emb', 'lambdaEmbedding'],
  ['lambda-reg', 'lambdaReg'],
  ['lambda-hyper', 'lambdaHyper'],
  ['blend', 'blend'],
  ['seed', 'seed'],
  ['init-seed', 'initSeed'],
];

export async function trainEncoderCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    pack: { type: 'string' },
    images: { type: 'string' },
    boxes: { type: 'string' },
    reg: { type: 'string' },
    placeholder: { type: 'string' },
    init: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'string' },
    'save-every': { type: 'number' },
    'eval-every': { type: 'number' },
    'eval-samples': { type: 'number' },
    ...Object.fromEntries(NUMERIC.map(([flag]) => [flag, { type: 'number' as const }])),
    // Built from NUMERIC at run time: values are looked up by name, so the record type.
  } as OptionSpecs);
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.images !== 'string') throw new UsageError('train-encoder needs --images <folder or list file>');
  if (typeof o.out !== 'string') throw new UsageError('train-encoder needs --out <dir>');
  if (typeof o.resume === 'string' && typeof o.init === 'string')
    throw new UsageError('--init and --resume exclude each other');

  // Options: the defaults, or the checkpoint's when resuming; then the flags given.
  const base: TrainEncoderOptions =
    typeof o.resume === 'string'
      ? readCheckpoint<TrainEncoderOptions>(new Uint8Array(readFileSync(o.resume))).options
      : { ...DEFAULT_TRAIN_ENCODER };
  const options: TrainEncoderOptions = { ...base };
  for (const [flag, key] of NUMERIC) if (typeof o[flag] === 'number') (options[key] as number) = o[flag];
  if (typeof o.reg === 'string') {
    if (!(EMBEDDING_REGULARIZERS as readonly string[]).includes(o.reg))
      throw new UsageError(`--reg must be one of ${EMBEDDING_REGULARIZERS.join(', ')}, got ${o.reg}`);
    options.reg = o.reg as EmbeddingRegularizer;
  }
  if (typeof o.placeholder === 'string') options.placeholder = o.placeholder;
  if (typeof o.resume !== 'string' && typeof o.warmup !== 'number')
    options.warmup = Math.min(options.warmup, Math.floor(options.steps / 10));

  const files = listImageFiles(o.images);
  const boxes = typeof o.boxes === 'string' ? parseBoxes(readFileSync(o.boxes, 'utf8')) : undefined;
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir));
  try {
    // Keep each square at up to twice the largest model input: crops and resizes stay cheap.
    const maxSide = 2 * Math.max(rt.manifest.imageSize, rt.vision.config.image_size);
    const images = await loadTrainingImages(files, maxSide, boxes);
    log(
      `training the tuning encoder on ${images.length} image(s): ${options.steps} steps × ${options.batch} images` +
        `${options.accum > 1 ? ` × ${options.accum} micro-batches` : ''}, lr ${options.lr} (warm-up ${options.warmup}, cosine), reg ${options.reg}, α ${options.blend}`,
    );
    const t0 = performance.now();
    const records = await trainEncoderRun(rt, images, options, {
      out: o.out,
      resume: typeof o.resume === 'string' ? o.resume : undefined,
      init: typeof o.init === 'string' ? o.init : undefined,
      saveEvery: typeof o['save-every'] === 'number' ? o['save-every'] : Math.max(1, Math.min(500, options.steps)),
      evalEvery: typeof o['eval-every'] === 'number' ? o['eval-every'] : 0,
      evalSamples: typeof o['eval-samples'] === 'number' ? o['eval-samples'] : 8,
      log,
    });
    log(
      `${records.length} step(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s; the encoder is in ${o.out} (pack it with: likeness pack --from <diffusers folder> --encoder ${o.out} --out <pack>)`,
    );
    return 0;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
