// likeness pack --from <diffusers folder> --out <dir> [--image-encoder <dir>] [--encoder <dir> | --untrained-encoder] [--fp16]
import { buildPack } from '../../packs/build-pack.ts';
import { parseArgs, UsageError } from '../args.ts';
import { exportPackGraphs as exportGraphsForPack } from '../../onnx/export-graphs.ts';

export async function packCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    from: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    'image-encoder': { type: 'string' },
    encoder: { type: 'string' },
    'untrained-encoder': { type: 'flag' },
    fp16: { type: 'flag' },
    seed: { type: 'number' },
    'no-graphs': { type: 'flag' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.from !== 'string' || typeof o.out !== 'string') throw new UsageError('pack needs --from <diffusers folder> and --out <dir>');
  if (typeof o.encoder === 'string' && o['untrained-encoder']) throw new UsageError('give --encoder <dir> or --untrained-encoder, not both');
  if (typeof o.seed === 'number' && !o['untrained-encoder']) throw new UsageError('--seed sets the untrained encoder\'s initialisation: it needs --untrained-encoder');
  const t0 = performance.now();
  log(`packing ${o.from} → ${o.out}`);
  const manifest = buildPack({
    from: o.from,
    out: o.out,
    name: typeof o.name === 'string' ? o.name : undefined,
    imageEncoder: typeof o['image-encoder'] === 'string' ? o['image-encoder'] : undefined,
    encoder: typeof o.encoder === 'string' ? o.encoder : undefined,
    untrainedEncoder: o['untrained-encoder'] === true,
    fp16: o.fp16 === true,
    seed: typeof o.seed === 'number' ? o.seed : undefined,
    exportGraphs: o['no-graphs'] ? undefined : exportGraphsForPack,
    log,
  });
  const bytes = manifest.files.reduce((n, f) => n + f.bytes, 0);
  log(`pack "${manifest.name}": ${manifest.files.length} files, ${(bytes / 1e6).toFixed(2)} MB, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const te = manifest.architecture.tuningEncoder as { trained?: boolean } | undefined;
  if (!te) {
    log(
      'note: this pack has NO tuning encoder: `likeness personalize` needs --class-word <word> (and the app asks for one) and tunes ' +
        'from that word for longer; pack a trained encoder with --encoder <dir> for the paper\'s fast start.',
    );
  } else if (te.trained === false) {
    log('note: this pack carries an UNTRAINED tuning encoder (--untrained-encoder, for tests): personalization from it shows the pipeline, not the method\'s quality.');
  }
  return 0;
}
