// The VAE decoder's GPU memory at the real width (SD 1.5 / 2.x AutoencoderKL: 512-256-128
// channels, one 512-wide attention head), measured with the engine's pool accounting as
// bench:scale measures "peak pool": random weights of the real names and shapes
// (../shared/data/reference/keys, frozen weights fp16 as a pack holds them), one latent per
// size, and per size the most bytes the pool handed out during the decode beyond the
// resident weights, the largest buffer, and the wall time. Not a test; it loads only the
// VAE (≈ 0.1 GB) so that it runs where the whole SD pack of bench:scale would not fit.
//
//   npx tsx bench/vae-decode-memory.ts [--sizes 64,128,256] [--accounting-only] [--out …json]
//
// --accounting-only records no kernel dispatches (buffer copies still run): every tensor is
// still allocated and released on the device exactly as in a real decode — which buffers an
// op takes depends on shapes, never on values — so the pool numbers are those of a real run,
// in seconds instead of the half hour a 512 px decode takes on llvmpipe. The image is then
// meaningless and not checked; wall times of such rows are not decode times.
// --binding-limit n (with --accounting-only): account as on an adapter whose storage
// binding limit is n bytes (e.g. 2147483648, the H200's) — the splits read the limit, and no
// dispatch is validated against this device's own limit since none is recorded.
// --hold: the engine backend without ops.release, i.e. every activation held until its
// segment returns, as the VAE ran before it released them (the "before" numbers).
// --activations f16: fp16 activations (needs shader-f16, which lavapipe has), as a runtime
// with fp16 weights on such an adapter decodes.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { memoryBackend } from './memory-backend.ts';
import { frozenWeightsF16 } from '../src/models/engine-params.ts';
import { MapParamSource, Params } from '../src/models/params.ts';
import type { VaeConfig } from '../src/models/vae/vae-config.ts';
import { vaeDecode } from '../src/models/vae/vae.ts';
import { syntheticTensor } from '../src/packs/synthetic-sd.ts';

const KEYS = new URL('../../shared/data/reference/keys/', import.meta.url);
const MiB = 2 ** 20;

export interface VaeDecodeMemoryRow {
  size: number;
  latent: number;
  ms: number;
  /** Peak pool bytes during the decode minus the bytes live before it (the weights). */
  activationPeakBytes: number;
  peakPoolBytes: number;
  largestBufferBytes: number;
}

export interface VaeDecodeMemoryOptions {
  accountingOnly?: boolean;
  hold?: boolean;
  /** fp16 activations (EngineOps halfActivations; needs shader-f16, as lavapipe has). */
  halfActivations?: boolean;
  /** Only with accountingOnly: the binding limit the splits plan for. */
  bindingLimit?: number;
}

export async function runVaeDecodeMemory(sizes: number[], log: (s: string) => void, o: VaeDecodeMemoryOptions = {}) {
  const { accountingOnly = false, hold = false, halfActivations = false } = o;
  const config: VaeConfig = JSON.parse(readFileSync(new URL('sd-vae.config.json', KEYS), 'utf8'));
  const keys = (
    JSON.parse(readFileSync(new URL('sd-vae.keys.json', KEYS), 'utf8')).keys as { name: string; shape: number[] }[]
  ).filter((k) => k.name.startsWith('decoder.') || k.name.startsWith('post_quant_conv.'));
  const engine = await Engine.create();
  const rows: VaeDecodeMemoryRow[] = [];
  try {
    const weights = new Map<string, Tensor>();
    keys.forEach((k, i) => {
      const t = engine.tensor(syntheticTensor(k.name, k.shape, 1000 + i), k.shape, {
        dtype: frozenWeightsF16(k.name, k.shape) ? 'f16' : 'f32',
      });
      weights.set(k.name, engine.keep(t));
    });
    const params = new Params(new MapParamSource(weights, (t) => t.shape));
    const ops = await memoryBackend(
      engine,
      { accountingOnly, hold, halfActivations, bindingLimit: o.bindingLimit },
      'vae-decode-memory',
    );
    log(`adapter ${engine.info.name}; VAE decoder weights ${(engine.pool.getStats().liveBytes / MiB).toFixed(0)} MiB`);
    for (const size of sizes) {
      const h = size / 8;
      await engine.sync();
      engine.pool.trim();
      engine.pool.resetPeak();
      const before = engine.pool.getStats().liveBytes;
      const t0 = performance.now();
      const out = await engine.noGrad(() =>
        engine.scopeAsync(async () =>
          vaeDecode(ops, params, config, engine.full([1, config.latent_channels, h, h], 0.1)).read(),
        ),
      );
      const ms = performance.now() - t0;
      if (!accountingOnly && !out.every(Number.isFinite))
        throw new Error(`vae decode at ${size} px: output not finite`);
      const s = engine.pool.getStats();
      const row = {
        size,
        latent: h,
        ms,
        activationPeakBytes: s.peakLiveBytes - before,
        peakPoolBytes: s.peakLiveBytes,
        largestBufferBytes: s.largestBufferBytes,
      };
      rows.push(row);
      log(
        `${size} px: ${(ms / 1000).toFixed(1)} s, activations peak ${(row.activationPeakBytes / MiB).toFixed(1)} MiB, ` +
          `largest buffer ${(row.largestBufferBytes / MiB).toFixed(1)} MiB`,
      );
    }
    return {
      adapter: engine.info.name,
      accountingOnly,
      hold,
      halfActivations,
      maxStorageBufferBindingSize: engine.device.limits.maxStorageBufferBindingSize,
      bindingLimit: engine.maxBindingBytes,
      rows,
    };
  } finally {
    engine.destroy();
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const argv = process.argv.slice(2);
  let sizes = [64, 128, 256];
  let out = 'bench/results-vae-decode.json';
  let accountingOnly = false;
  let hold = false;
  let halfActivations = false;
  let bindingLimit: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--sizes') sizes = (argv[++i] ?? '').split(',').map(Number);
    else if (argv[i] === '--accounting-only') accountingOnly = true;
    else if (argv[i] === '--hold') hold = true;
    else if (argv[i] === '--activations') {
      const a = argv[++i];
      if (a !== 'f16' && a !== 'f32') throw new Error(`vae-decode-memory: --activations is f16 or f32, got '${a}'`);
      halfActivations = a === 'f16';
    } else if (argv[i] === '--binding-limit') bindingLimit = Number(argv[++i]);
    else if (argv[i] === '--out') out = argv[++i] ?? out;
    else throw new Error(`vae-decode-memory: unknown argument '${argv[i]}'`);
  }
  if (!sizes.length || sizes.some((s) => !Number.isInteger(s) || s < 8 || s % 8 !== 0)) {
    throw new Error(`vae-decode-memory: --sizes wants multiples of 8, got ${sizes.join(',')}`);
  }
  const report = await runVaeDecodeMemory(sizes, (s) => process.stderr.write(`${s}\n`), {
    accountingOnly,
    hold,
    halfActivations,
    bindingLimit,
  });
  writeFileSync(resolve(out), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`wrote ${resolve(out)}\n`);
}
