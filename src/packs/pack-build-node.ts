// buildPack from paths (the CLI and tests): a folder is a diffusers model, a file a
// single-file checkpoint; every other input is a folder or file too. Files are read by
// range through handles, and the pack is staged next to `out` and renamed at the end.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildPack, type BuildPackOptions, type PackSource } from './build-pack.ts';
import type { Manifest } from './manifest.ts';
import { nodeFolder, nodePackSink, openNodeSource } from './pack-io-node.ts';
import type { RangedSource, SourceFolder } from './pack-io.ts';
import type { SdVariant } from './source-configs.ts';

/** The CLIP BPE merges the project ships, for sources that carry no tokenizer. */
export const BUNDLED_MERGES = fileURLToPath(new URL('./clip-bpe/bpe_simple_vocab_16e6.txt.gz', import.meta.url));

export interface BuildPackFromPathsOptions extends Omit<
  BuildPackOptions,
  'source' | 'sink' | 'imageEncoder' | 'encoder' | 'vae' | 'tokenizer' | 'scheduler'
> {
  from: string;
  out: string;
  /** Single file only: a diffusers folder to take the configs (and tokenizer) from. */
  config?: string;
  variant?: SdVariant;
  ema?: boolean;
  imageEncoder?: string;
  encoder?: string;
  /** A diffusers vae folder or a .safetensors file. */
  vae?: string;
  tokenizer?: string;
  /** A scheduler_config.json, or a folder holding one (or scheduler/scheduler_config.json). */
  scheduler?: string;
}

function mustExist(path: string, what: string): string {
  if (!existsSync(path)) throw new Error(`pack: ${what} ${path} does not exist`);
  return path;
}

export async function buildPackFromPaths(o: BuildPackFromPathsOptions): Promise<Manifest> {
  const closers: (() => Promise<void>)[] = [];
  const folder = (p: string, what: string): SourceFolder => {
    if (!statSync(mustExist(p, what)).isDirectory()) throw new Error(`pack: ${what} ${p} is not a folder`);
    const f = nodeFolder(p);
    closers.push(() => f.closeAll());
    return f;
  };
  const file = async (p: string): Promise<RangedSource> => {
    const f = await openNodeSource(p);
    closers.push(() => f.close());
    return f;
  };
  try {
    const isDir = statSync(mustExist(o.from, '--from')).isDirectory();
    if (!isDir && (o.config === undefined ? false : !statSync(mustExist(o.config, '--config')).isDirectory()))
      throw new Error(`pack: --config ${o.config} must be a diffusers folder`);
    if (isDir && (o.config || o.variant || o.ema))
      throw new Error(
        'pack: --config, --variant and --ema apply to single-file checkpoints; --from is a diffusers folder',
      );
    const source: PackSource = isDir
      ? { kind: 'diffusers', folder: folder(o.from, '--from') }
      : {
          kind: 'single-file',
          file: await file(o.from),
          config: o.config ? folder(o.config, '--config') : undefined,
          variant: o.variant,
          ema: o.ema,
        };
    let scheduler: RangedSource | undefined;
    if (o.scheduler) {
      const s = mustExist(o.scheduler, '--scheduler');
      if (statSync(s).isDirectory()) {
        const inner = [`${s}/scheduler_config.json`, `${s}/scheduler/scheduler_config.json`].find((p) => existsSync(p));
        if (!inner) throw new Error(`pack: no scheduler_config.json in ${s}`);
        scheduler = await file(inner);
      } else scheduler = await file(s);
    }
    let vae: BuildPackOptions['vae'];
    if (o.vae)
      vae = statSync(mustExist(o.vae, '--vae')).isDirectory()
        ? { folder: folder(o.vae, '--vae') }
        : { file: await file(o.vae) };
    let tokenizer: RangedSource | undefined;
    if (o.tokenizer) {
      const t = mustExist(o.tokenizer, '--tokenizer');
      tokenizer = await file(
        statSync(t).isDirectory()
          ? mustExist(
              existsSync(`${t}/tokenizer/merges.txt`) ? `${t}/tokenizer/merges.txt` : `${t}/merges.txt`,
              'merges.txt in',
            )
          : t,
      );
    }
    const {
      from: _from,
      out,
      config: _config,
      variant: _variant,
      ema: _ema,
      imageEncoder,
      encoder,
      vae: _vae,
      tokenizer: _tokenizer,
      scheduler: _scheduler,
      ...rest
    } = o;
    return await buildPack({
      ...rest,
      source,
      sink: nodePackSink(out),
      hasher: () => {
        const h = createHash('sha256');
        return { update: (b: Uint8Array) => h.update(b), hex: () => h.digest('hex') };
      },
      imageEncoder: imageEncoder ? folder(imageEncoder, '--image-encoder') : undefined,
      encoder: encoder ? folder(encoder, '--encoder') : undefined,
      vae,
      tokenizer,
      bundledTokenizer: await file(BUNDLED_MERGES),
      scheduler,
    });
  } finally {
    for (const close of closers) await close();
  }
}

/**
 * The same build in a child process, synchronously (`likeness pack` through the CLI): for
 * callers that must stay synchronous, such as the test helper that builds the tiny pack.
 */
export function buildPackSync(args: string[]): void {
  const bin = fileURLToPath(new URL('../../bin/likeness.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [bin, 'pack', ...args], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`likeness pack ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr || r.stdout}`);
}
