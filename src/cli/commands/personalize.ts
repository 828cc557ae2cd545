// likeness personalize --image photo.jpg --out concept.safetensors [options]: one photo → a
// concept, through the session core (session/session.ts), the same calls the app's worker makes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, type Manifest } from '../../packs/manifest.ts';
import { NumericalError } from '../../pipeline/personalize.ts';
import { parseArgs, UsageError } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';
import { writeConceptAs } from '../export-files.ts';
import { openCliSession } from '../open-session.ts';
import { PERSONALIZE_OPTIONS } from './personalize-options.ts';

/** The pack's manifest, or null when it cannot be read (loading the pack then says why). */
function peekManifest(dir: string): Manifest | null {
  try {
    return parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return null;
  }
}

function parseCrop(v: string | undefined) {
  if (v === undefined) return null;
  const m = /^(\d+),(\d+),(\d+)$/.exec(v);
  if (!m) throw new UsageError('--crop must be x,y,size in pixels of the photo');
  return { x: +m[1], y: +m[2], size: +m[3] };
}

export interface CommandEnv {
  /** The clock written into files (tests fix it). */
  now?: () => number;
}

export async function personalizeCommand(
  argv: string[],
  log: (s: string) => void,
  env: CommandEnv = {},
): Promise<number> {
  const { options: o, positional } = parseArgs(argv, PERSONALIZE_OPTIONS);
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (o.kohya && o.format !== 'likeness')
    throw new UsageError("--kohya names the Likeness file's tensors; --format a1111 already uses kohya names");
  const crop = parseCrop(o.crop);
  const packDir = o.pack ?? ensureTinyPack(log);
  const now = env.now ?? Date.now;
  // A pack without a tuning encoder starts from a class word: refuse before verifying the
  // pack's files (seconds for SD-sized packs) and before any GPU work.
  const peek = peekManifest(packDir);
  if (peek && !peek.architecture.tuningEncoder && !o['class-word']?.trim()) {
    throw new UsageError(
      `the pack ${packDir} has no tuning encoder, so personalize starts from a class word: add --class-word <word> saying what the photo shows (e.g. --class-word dog)`,
    );
  }
  const image = new Uint8Array(readFileSync(o.image));
  const { session, close } = await openCliSession(packDir, { weights: o.weights }, log);
  try {
    const t0 = performance.now();
    const concept = await session.personalize(
      {
        image,
        mime: '',
        crop,
        placeholder: o.token,
        steps: o.steps,
        classWord: o['class-word'],
        seed: o.seed,
        learningRate: o.lr,
        batch: o.batch,
        // the flag forces it on; otherwise personalize decides by size (on from 256 px)
        checkpointing: o.checkpointing ? true : undefined,
      },
      {
        onProgress: (e) => {
          if (e.stage === 'settings') {
            const s = e.settings;
            if (e.start === 'class-word') {
              log(
                `start: the class word "${s.classWord}" (this pack has no tuning encoder); ${s.steps} steps at lr ${s.learningRate}, λ_w ${s.lambdaWeights}, λ_e ${s.lambdaEmbedding}`,
              );
            } else {
              log(
                `start: the pack's tuning encoder${e.encoderTrained ? '' : " (UNTRAINED test initialisation: results show the pipeline, not the method's quality)"}; ${s.steps} steps at lr ${s.learningRate}`,
              );
              if (s.classWord) log("note: --class-word is not used: this pack's tuning encoder gives the start");
            }
          }
          if (e.stage === 'encoding') log('encoding the photo …');
          if (e.stage === 'nearest') log(`near: ${e.words.join(', ')}`);
          if (e.stage === 'tuning')
            log(`step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}  (diffusion ${e.diffusionLoss.toFixed(4)})`);
        },
      },
    );
    const written = writeConceptAs(concept, o.format, o.out, { kohya: o.kohya, createdAt: now() });
    const start =
      concept.start?.kind === 'class-word' ? `the class word "${concept.start.word}"` : 'the tuning encoder';
    log(
      `concept "${concept.placeholder}" (started from ${start}) written to ${written.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return 0;
  } catch (e) {
    if (e instanceof NumericalError) {
      writeConceptAs(e.fallback, o.format, o.out, { kohya: o.kohya, createdAt: now() });
      log(
        `${e.message}\nthe untuned start (${e.fallback.start?.kind === 'class-word' ? 'the class word' : "the encoder's prediction"}) was written to ${o.out}`,
      );
      return 3;
    }
    throw e;
  } finally {
    close();
  }
}
