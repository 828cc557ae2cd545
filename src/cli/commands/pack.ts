// likeness pack --from <diffusers folder | single-file .safetensors> [--name <name>] [--out <dir>] [options]
// The pack goes to models/<name>/ (the folder the app serves) unless --out says otherwise.
import { basename, join } from 'node:path';
import { buildPackFromPaths } from '../../packs/pack-build-node.ts';
import type { BuildProgress } from '../../packs/pack-io.ts';
import { parseArgs, UsageError } from '../args.ts';
import { MODELS_DIR } from '../defaults.ts';
import { PACK_OPTIONS } from './pack-options.ts';
import { exportPackGraphs as exportGraphsForPack } from '../../onnx/export-graphs.ts';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export async function packCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, PACK_OPTIONS);
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.encoder === 'string' && o['untrained-encoder'])
    throw new UsageError('give --encoder <dir> or --untrained-encoder, not both');
  if (typeof o.seed === 'number' && !o['untrained-encoder'])
    throw new UsageError("--seed sets the untrained encoder's initialisation: it needs --untrained-encoder");
  const name = str(o.name) ?? defaultPackName(o.from);
  const out = str(o.out) ?? join(MODELS_DIR, name);
  const t0 = performance.now();
  log(`packing ${o.from} → ${out}`);
  // Ctrl-C cancels cleanly: the staging folder is removed, nothing that looks like a pack stays.
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  let last = 0;
  const onProgress = (p: BuildProgress) => {
    const now = performance.now();
    if (o.quiet || (now - last < 2000 && p.bytesDone < p.bytesTotal)) return;
    last = now;
    const eta = p.etaSeconds === null ? '' : `, ${Math.ceil(p.etaSeconds)} s left`;
    log(
      `  … ${(p.bytesDone / 1e9).toFixed(2)} / ${(p.bytesTotal / 1e9).toFixed(2)} GB, ${(p.rate / 1e6).toFixed(0)} MB/s${eta}  (${p.stage})`,
    );
  };
  try {
    const manifest = await buildPackFromPaths({
      from: o.from,
      out,
      name,
      config: str(o.config),
      variant: o.variant,
      ema: o.ema === true,
      vae: str(o.vae),
      tokenizer: str(o.tokenizer),
      scheduler: str(o.scheduler),
      imageEncoder: str(o['image-encoder']),
      encoder: str(o.encoder),
      untrainedEncoder: o['untrained-encoder'] === true,
      fp16: o.fp16 === true,
      seed: typeof o.seed === 'number' ? o.seed : undefined,
      exportGraphs: o['no-graphs'] ? undefined : exportGraphsForPack,
      log,
      onProgress,
      signal: abort.signal,
    });
    const bytes = manifest.files.reduce((n, f) => n + f.bytes, 0);
    log(
      `pack "${manifest.name}": ${manifest.files.length} files, ${(bytes / 1e6).toFixed(2)} MB, in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${out}`,
    );
    const te = manifest.architecture.tuningEncoder as { trained?: boolean } | undefined;
    if (!te) {
      log(
        'note: this pack has NO tuning encoder: `likeness personalize` needs --class-word <word> (and the app asks for one) and tunes ' +
          "from that word for longer; pack a trained encoder with --encoder <dir> for the paper's fast start.",
      );
    } else if (te.trained === false) {
      log(
        "note: this pack carries an UNTRAINED tuning encoder (--untrained-encoder, for tests): personalization from it shows the pipeline, not the method's quality.",
      );
    }
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** models/<name>: the source's folder or file name, without a weights extension, made path-safe. */
export function defaultPackName(from: string): string {
  const base = basename(from.replace(/[\\/]+$/, '')).replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, '');
  const safe = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  if (!safe) throw new UsageError(`cannot derive a pack name from ${JSON.stringify(from)}; pass --name`);
  return safe;
}
