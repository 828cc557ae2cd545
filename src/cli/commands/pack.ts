// likeness pack --from <diffusers folder> [--name <name>] [--out <dir>] [--image-encoder <dir>] [--encoder <dir>] [--fp16]
// The pack goes to models/<name>/ (the folder the app serves) unless --out says otherwise.
import { basename, join } from 'node:path';
import { buildPack } from '../../packs/build-pack.ts';
import { parseArgs, UsageError } from '../args.ts';
import { MODELS_DIR } from '../defaults.ts';
import { exportPackGraphs as exportGraphsForPack } from '../../onnx/export-graphs.ts';

export async function packCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    from: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    'image-encoder': { type: 'string' },
    encoder: { type: 'string' },
    fp16: { type: 'flag' },
    seed: { type: 'number' },
    'no-graphs': { type: 'flag' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.from !== 'string') throw new UsageError('pack needs --from <diffusers folder>');
  const name = typeof o.name === 'string' ? o.name : defaultPackName(o.from);
  const out = typeof o.out === 'string' ? o.out : join(MODELS_DIR, name);
  const t0 = performance.now();
  log(`packing ${o.from} → ${out}`);
  const manifest = buildPack({
    from: o.from,
    out,
    name,
    imageEncoder: typeof o['image-encoder'] === 'string' ? o['image-encoder'] : undefined,
    encoder: typeof o.encoder === 'string' ? o.encoder : undefined,
    fp16: o.fp16 === true,
    seed: typeof o.seed === 'number' ? o.seed : undefined,
    exportGraphs: o['no-graphs'] ? undefined : exportGraphsForPack,
    log,
  });
  const bytes = manifest.files.reduce((n, f) => n + f.bytes, 0);
  log(`pack "${manifest.name}": ${manifest.files.length} files, ${(bytes / 1e6).toFixed(2)} MB, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (!manifest.architecture.tuningEncoder || (manifest.architecture.tuningEncoder as { trained?: boolean }).trained === false) {
    log('note: this pack carries an UNTRAINED tuning encoder (deterministic initialisation); pack a trained one with --encoder for real personalization quality.');
  }
  return 0;
}

/** models/<name>: the source's folder or file name, without a weights extension, made path-safe. */
export function defaultPackName(from: string): string {
  const base = basename(from.replace(/[\\/]+$/, '')).replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, '');
  const safe = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  if (!safe) throw new UsageError(`cannot derive a pack name from ${JSON.stringify(from)}; pass --name`);
  return safe;
}
