// likeness personalize --image photo.jpg [--pack dir] [--token S*] [--steps 12] [--class-word dog]
//                      [--crop x,y,size] [--seed 0] [--batch 1] [--checkpointing] [--kohya]
//                      [--format likeness|diffusers|a1111] [--weights stored|f16|f32] --out concept.safetensors|folder|file.zip
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../engine/engine.ts';
import { parseManifest, type Manifest } from '../../packs/manifest.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { decodeImage } from '../../image/decode-node.ts';
import { cropRect } from '../../image/transform.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { DEFAULT_PERSONALIZE, NumericalError, personalize, tuningDefaults } from '../../pipeline/personalize.ts';
import { parseArgs, UsageError, weightsOption } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';
import { parseExportFormat, writeConceptAs } from '../export-files.ts';

/** The pack's manifest, or null when it cannot be read (loadPackFromFolder then says why). */
function peekManifest(dir: string): Manifest | null {
  try {
    return parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return null;
  }
}

export async function personalizeCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    image: { type: 'string' },
    pack: { type: 'string' },
    weights: { type: 'string' },
    token: { type: 'string' },
    steps: { type: 'number' },
    'class-word': { type: 'string' },
    crop: { type: 'string' },
    seed: { type: 'number' },
    lr: { type: 'number' },
    batch: { type: 'number' },
    checkpointing: { type: 'flag' },
    kohya: { type: 'flag' },
    format: { type: 'string' },
    out: { type: 'string' },
  });
  const format = parseExportFormat(o.format);
  if (o.kohya && format !== 'likeness') throw new UsageError('--kohya names the Likeness file\'s tensors; --format a1111 already uses kohya names');
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.image !== 'string') throw new UsageError('personalize needs --image <photo>');
  if (typeof o.out !== 'string') throw new UsageError('personalize needs --out <concept.safetensors>');
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);
  const classWord = typeof o['class-word'] === 'string' ? o['class-word'].trim() : undefined;

  let image = await decodeImage(new Uint8Array(readFileSync(o.image)));
  if (typeof o.crop === 'string') {
    const m = /^(\d+),(\d+),(\d+)$/.exec(o.crop);
    if (!m) throw new UsageError('--crop must be x,y,size in pixels of the photo');
    image = cropRect(image, { x: +m[1], y: +m[2], width: +m[3], height: +m[3] });
  }
  // A pack without a tuning encoder starts from a class word: refuse before verifying the
  // pack's files (seconds for SD-sized packs) and before any GPU work.
  const peek = peekManifest(packDir);
  if (peek && !peek.architecture.tuningEncoder && !classWord) {
    throw new UsageError(
      `the pack ${packDir} has no tuning encoder, so personalize starts from a class word: add --class-word <word> saying what the photo shows (e.g. --class-word dog)`,
    );
  }
  const pack = await loadPackFromFolder(packDir);
  const encoderConfig = pack.manifest.architecture.tuningEncoder as { trained?: boolean } | undefined;
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, pack, { weights: weightsOption(o.weights) });
  try {
    const hasEncoder = rt.encoder !== null;
    const schedule = tuningDefaults(hasEncoder, rt.manifest.defaults.tuningLearningRate);
    const steps = typeof o.steps === 'number' ? o.steps : schedule.steps;
    const learningRate = typeof o.lr === 'number' ? o.lr : schedule.learningRate;
    if (!hasEncoder) {
      log(`start: the class word "${classWord}" (this pack has no tuning encoder); ${steps} steps at lr ${learningRate}, λ_w ${schedule.lambdaWeights}, λ_e ${schedule.lambdaEmbedding}`);
    } else {
      log(`start: the pack's tuning encoder${encoderConfig?.trained === false ? ' (UNTRAINED test initialisation: results show the pipeline, not the method\'s quality)' : ''}; ${steps} steps at lr ${learningRate}`);
      if (classWord) log('note: --class-word is not used: this pack\'s tuning encoder gives the start');
    }
    const t0 = performance.now();
    const concept = await personalize(
      rt,
      image,
      {
        ...DEFAULT_PERSONALIZE,
        ...schedule,
        placeholder: typeof o.token === 'string' ? o.token : DEFAULT_PERSONALIZE.placeholder,
        steps,
        learningRate,
        classWord,
        seed: typeof o.seed === 'number' ? o.seed : 0,
        batch: typeof o.batch === 'number' ? o.batch : 1,
        // the flag forces it on; otherwise personalize decides by size (on from 256 px)
        checkpointing: o.checkpointing === true ? true : undefined,
      },
      (e) => {
        if (e.stage === 'encoding') log('encoding the photo …');
        if (e.stage === 'nearest') log(`near: ${e.words.join(', ')}`);
        if (e.stage === 'tuning') log(`step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}  (diffusion ${e.diffusionLoss.toFixed(4)})`);
      },
    );
    const written = writeConceptAs(concept, format, o.out, o.kohya === true);
    const start = concept.start?.kind === 'class-word' ? `the class word "${concept.start.word}"` : 'the tuning encoder';
    log(`concept "${concept.placeholder}" (started from ${start}) written to ${written.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    if (e instanceof NumericalError) {
      writeConceptAs(e.fallback, format, o.out, o.kohya === true);
      log(`${e.message}\nthe untuned start (${e.fallback.start?.kind === 'class-word' ? 'the class word' : "the encoder's prediction"}) was written to ${o.out}`);
      return 3;
    }
    throw e;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
