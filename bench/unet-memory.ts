// The UNet's GPU memory at inference, at the real width (SD 1.5: 320-640-1280-1280
// channels, ../shared/data/reference/keys), measured with the engine's pool accounting as
// bench:scale's `unet-batch2` phase measures "peak pool": random weights of the real names
// and shapes (frozen weights fp16 as a pack holds them), one call per size exactly as
// generate runs it — batch 2 (CFG: [uncond, cond]), a 77×768 prompt context, t = 500,
// without gradients, checkpointing: true — and per size the most bytes the pool handed out
// beyond the resident weights, the largest buffer, where the peak happened and what was live
// then. Not a test; it loads only the UNet (≈ 1.6 GiB in fp16).
//
//   npx tsx bench/unet-memory.ts [--sizes 64,512] [--accounting-only] [--binding-limit n]
//                                [--hold] [--concept α] [--check] [--activations f16|f32] [--out …json]
//
// --accounting-only records no kernel dispatches and uploads no weight values (buffer copies
// of the inputs still run): every tensor is still allocated and released on the device exactly
// as in a real call — which buffers an op takes depends on shapes, never on values — so the
// pool numbers are those of a real run, in seconds instead of the hours a 512 px call takes
// on llvmpipe. The output is then meaningless and not checked.
// --binding-limit n (with --accounting-only): account as on an adapter whose storage
// binding limit is n bytes (e.g. 2147483648, the H200's; 134217728, the browsers' default).
// --hold: the engine backend without ops.release, i.e. every activation of a block held
// until the block (a checkpoint segment) returns.
// --check (real runs): run each size again holding every activation, the feed-forward in one
// piece (the backend without ops.release), and count the output values that differ (0 expected).
// --concept α: as generate with a concept — rank-4 LoRA on every attention projection and
// the dual path blended with α (0 < α < 1 runs both paths of every transformer block).
//
// Where: the pool's acquire/release are observed (not changed) and every activation buffer is
// labelled with the weight the model read last before it was allocated — the layer that made
// it, or for glue between layers (a concat, an upsample) the layer before. At each new peak
// the live activations are summed by label; the report lists the largest groups at the peak
// and each block's own highest pool level.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import type { EngineOps } from '../src/models/engine-ops.ts';
import { memoryBackend } from './memory-backend.ts';
import { frozenWeightsF16 } from '../src/models/engine-params.ts';
import type { LoraPair } from '../src/models/lora.ts';
import { MapParamSource, Params } from '../src/models/params.ts';
import { unet } from '../src/models/unet/unet.ts';
import { resolveUNetConfig, type UNetConfig } from '../src/models/unet/unet-config.ts';
import { syntheticTensor } from '../src/packs/synthetic-sd.ts';

const KEYS = new URL('../../shared/data/reference/keys/', import.meta.url);
const MiB = 2 ** 20;

export interface UNetKey {
  name: string;
  shape: number[];
}

/** SD 1.5's UNet config and parameter names/shapes (diffusers). */
export function sd15UNet(): { config: UNetConfig; keys: UNetKey[] } {
  const config = JSON.parse(readFileSync(new URL('sd15-unet.config.json', KEYS), 'utf8')) as UNetConfig;
  const keys = JSON.parse(readFileSync(new URL('sd15-unet.keys.json', KEYS), 'utf8')).keys as UNetKey[];
  return { config, keys };
}

export interface PeakGroup {
  /** The block (e.g. "up_blocks.3.attentions.2") whose weight was read last before allocation. */
  label: string;
  bytes: number;
  buffers: number;
}

export interface UNetMemoryRow {
  size: number;
  latent: number;
  batch: number;
  ms: number;
  /** Peak pool bytes during the call minus the bytes live before it (weights, inputs). */
  activationPeakBytes: number;
  peakPoolBytes: number;
  largestBufferBytes: number;
  /** The weight read last before the peak allocation. */
  peakAt: string;
  /** Live activations at the peak, summed by the block that made them, largest first. */
  peakLiveSet: PeakGroup[];
  /** Each block's highest activation level (beyond the weights), in call order. */
  blockPeaks: { block: string; bytes: number }[];
  /** --check: the output against the same call holding everything, unchunked. */
  check?: { differing: number; maxAbsDiff: number };
}

/** The block a parameter belongs to: "down_blocks.0.attentions.1", "mid_block.resnets.0", "conv_in". */
function blockOf(name: string): string {
  const parts = name.split('.');
  if (parts[0] === 'down_blocks' || parts[0] === 'up_blocks') return parts.slice(0, 4).join('.');
  if (parts[0] === 'mid_block') return parts.slice(0, 3).join('.');
  return parts[0];
}

export interface UNetMemoryOptions {
  accountingOnly?: boolean;
  hold?: boolean;
  /** fp16 activations (EngineOps halfActivations; needs shader-f16, as lavapipe has). */
  halfActivations?: boolean;
  /** Only with accountingOnly: the binding limit the splits plan for. */
  bindingLimit?: number;
  /** The UNet (default SD 1.5). */
  model?: { config: UNetConfig; keys: UNetKey[] };
  /** Run on this engine (left alive) instead of a new one. */
  engine?: Engine;
  /** Images per call (default 2: CFG's [uncond, cond]). */
  batch?: number;
  /** As generate with a concept: LoRA (rank 4) and the dual path blended with this α. */
  conceptBlend?: number;
  /** Real runs only: compare the output with the same call holding everything (no release, no chunks). */
  check?: boolean;
}

const LORA_RANK = 4;

export async function runUNetMemory(sizes: number[], log: (s: string) => void, o: UNetMemoryOptions = {}) {
  const { accountingOnly = false, hold = false, batch = 2, halfActivations = false } = o;
  const { config: raw, keys } = o.model ?? sd15UNet();
  const cfg = resolveUNetConfig(raw);
  const engine = o.engine ?? (await Engine.create());
  const weights = new Map<string, Tensor>();
  const { acquire, release } = engine.pool;
  try {
    // 1. weights (no values when only accounting: nothing reads them)
    keys.forEach((k, i) => {
      const dtype = frozenWeightsF16(k.name, k.shape) ? 'f16' : 'f32';
      // exact-size buffers, as a pack's weights are held (PackRuntime)
      const t = engine.keep(engine.empty(k.shape, dtype, true));
      if (!accountingOnly) engine.write(t, syntheticTensor(k.name, k.shape, 1000 + i));
      weights.set(k.name, t);
    });
    let lastParam = '(inputs)';
    const source = new MapParamSource(weights, (t) => t.shape);
    const params = new Params({
      get: (name, shape) => {
        lastParam = name;
        return source.get(name, shape);
      },
      has: (name) => source.has(name),
    });
    if (o.check && (accountingOnly || hold))
      throw new Error('unet-memory: --check compares real outputs: not with --accounting-only or --hold');
    const ops = await memoryBackend(
      engine,
      { accountingOnly, hold, halfActivations, bindingLimit: o.bindingLimit },
      'unet-memory',
    );
    const weightBytes = engine.pool.getStats().liveBytes;
    log(`adapter ${engine.info.name}; UNet weights ${(weightBytes / MiB).toFixed(0)} MiB`);

    // 2. observe the pool: label each buffer, snapshot the live set at every new peak
    const live = new Map<GPUBuffer, string>();
    let base = 0;
    let peak = 0;
    let peakAt = '';
    let peakSet = new Map<string, { bytes: number; buffers: number }>();
    const blockPeaks = new Map<string, number>();
    engine.pool.acquire = (bytes: number, exact = false) => {
      const b = acquire.call(engine.pool, bytes, exact);
      const label = blockOf(lastParam);
      live.set(b, label);
      const level = engine.pool.getStats().liveBytes - base;
      blockPeaks.set(label, Math.max(blockPeaks.get(label) ?? 0, level));
      if (level > peak) {
        peak = level;
        peakAt = lastParam;
        peakSet = new Map();
        for (const [buf, l] of live) {
          const g = peakSet.get(l) ?? { bytes: 0, buffers: 0 };
          g.bytes += buf.size;
          g.buffers++;
          peakSet.set(l, g);
        }
      }
      return b;
    };
    engine.pool.release = (b: GPUBuffer) => {
      live.delete(b);
      release.call(engine.pool, b);
    };

    const conceptInputs = (alpha: number) => {
      const layers = new Map<string, LoraPair<Tensor>>();
      for (const k of keys) {
        const m = /^(.*\.attn[12]\.(?:to_q|to_k|to_v|to_out\.0))\.weight$/.exec(k.name);
        if (!m) continue;
        const [out, inp] = k.shape;
        const small = (n: number) => Float32Array.from({ length: n }, (_, i) => 0.01 * Math.sin(i));
        layers.set(m[1], {
          A: engine.tensor(small(LORA_RANK * inp), [LORA_RANK, inp]),
          B: engine.tensor(small(out * LORA_RANK), [out, LORA_RANK]),
        });
      }
      const hardContext = engine.full([batch, 77, cfg.cross_attention_dim], 0.05);
      return { lora: { layers, scale: 1 }, dual: { hardContext, alpha } };
    };

    // 3. one call per size
    const rows: UNetMemoryRow[] = [];
    for (const size of sizes) {
      const h = size / 8;
      await engine.sync();
      engine.pool.trim();
      const call = (u: EngineOps) =>
        engine.noGrad(() =>
          engine.scopeAsync(async () => {
            lastParam = '(inputs)';
            const sample = engine.full([batch, cfg.in_channels, h, h], 0.1);
            const ctxShape = [batch, 77, cfg.cross_attention_dim];
            const context = engine.tensor(
              Float32Array.from({ length: batch * 77 * cfg.cross_attention_dim }, (_, i) => Math.sin(i)),
              ctxShape,
            );
            const concept = o.conceptBlend === undefined ? null : conceptInputs(o.conceptBlend);
            // the inputs, like the weights, are not the UNet's activations
            live.clear();
            blockPeaks.clear();
            engine.pool.resetPeak();
            base = engine.pool.getStats().liveBytes;
            peak = 0;
            peakAt = '';
            peakSet = new Map();
            const t0 = performance.now();
            const eps = unet(u, params, cfg, {
              sample,
              timesteps: new Array<number>(batch).fill(500),
              cond: { context, lora: concept?.lora ?? null, dual: concept?.dual ?? null },
              // as generate runs it: each block frees its intermediates when it returns
              checkpointing: true,
            });
            const data = await eps.read();
            return { data, ms: performance.now() - t0 };
          }),
        );
      const out = await call(ops);
      if (!accountingOnly && !out.data.every(Number.isFinite)) throw new Error(`unet at ${size} px: output not finite`);
      const s = engine.pool.getStats();
      const row: UNetMemoryRow = {
        size,
        latent: h,
        batch,
        ms: out.ms,
        activationPeakBytes: s.peakLiveBytes - base,
        peakPoolBytes: s.peakLiveBytes,
        largestBufferBytes: s.largestBufferBytes,
        peakAt,
        peakLiveSet: [...peakSet].map(([label, g]) => ({ label, ...g })).sort((a, b) => b.bytes - a.bytes),
        blockPeaks: [...blockPeaks].map(([block, bytes]) => ({ block, bytes })),
      };
      rows.push(row);
      const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
      log(
        `${size} px (latent ${h}, batch ${batch}): ${(out.ms / 1000).toFixed(1)} s, activations peak ${mib(row.activationPeakBytes)}, ` +
          `largest buffer ${mib(row.largestBufferBytes)}; peak at ${peakAt}`,
      );
      log(`  live at the peak: ${row.peakLiveSet.map((g) => `${g.label} ${mib(g.bytes)} (${g.buffers})`).join(', ')}`);
      const top = [...row.blockPeaks].sort((a, b) => b.bytes - a.bytes).slice(0, 6);
      log(`  highest blocks: ${top.map((b) => `${b.block} ${mib(b.bytes)}`).join(', ')}`);
      if (o.check) {
        // the same call holding every activation, feed-forward unchunked (no ops.release)
        const held = Object.create(ops) as EngineOps;
        Object.defineProperty(held, 'release', { value: undefined });
        const ref = (await call(held)).data;
        let worst = 0;
        let differing = 0;
        ref.forEach((v, i) => {
          const d = Math.abs(v - out.data[i]);
          if (d !== 0 || Object.is(v, -0) !== Object.is(out.data[i], -0)) differing++;
          worst = Math.max(worst, d);
        });
        row.check = { differing, maxAbsDiff: worst };
        log(`  check against holding everything: ${differing} of ${ref.length} values differ, max |Δ| ${worst}`);
      }
    }
    return {
      adapter: engine.info.name,
      accountingOnly,
      hold,
      halfActivations,
      conceptBlend: o.conceptBlend ?? null,
      weightBytes,
      maxStorageBufferBindingSize: engine.device.limits.maxStorageBufferBindingSize,
      bindingLimit: engine.maxBindingBytes,
      rows,
    };
  } finally {
    // back to the prototypes' methods and getter
    for (const k of ['dispatch', 'maxBindingBytes']) delete (engine as unknown as Record<string, unknown>)[k];
    engine.pool.acquire = acquire;
    engine.pool.release = release;
    if (o.engine) for (const t of weights.values()) t.dispose();
    else engine.destroy();
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const argv = process.argv.slice(2);
  let sizes = [64];
  let out = 'bench/results-unet-memory.json';
  let accountingOnly = false;
  let hold = false;
  let halfActivations = false;
  let bindingLimit: number | undefined;
  let conceptBlend: number | undefined;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--sizes') sizes = (argv[++i] ?? '').split(',').map(Number);
    else if (argv[i] === '--accounting-only') accountingOnly = true;
    else if (argv[i] === '--hold') hold = true;
    else if (argv[i] === '--activations') {
      const a = argv[++i];
      if (a !== 'f16' && a !== 'f32') throw new Error(`unet-memory: --activations is f16 or f32, got '${a}'`);
      halfActivations = a === 'f16';
    } else if (argv[i] === '--check') check = true;
    else if (argv[i] === '--binding-limit') bindingLimit = Number(argv[++i]);
    else if (argv[i] === '--concept') conceptBlend = Number(argv[++i]);
    else if (argv[i] === '--out') out = argv[++i] ?? out;
    else throw new Error(`unet-memory: unknown argument '${argv[i]}'`);
  }
  // the latent must survive three stride-2 downsamplings
  if (!sizes.length || sizes.some((s) => !Number.isInteger(s) || s < 64 || s % 64 !== 0)) {
    throw new Error(`unet-memory: --sizes wants multiples of 64, got ${sizes.join(',')}`);
  }
  if (bindingLimit !== undefined && (!Number.isInteger(bindingLimit) || bindingLimit < 256)) {
    throw new Error(`unet-memory: --binding-limit wants a byte count, got ${bindingLimit}`);
  }
  if (conceptBlend !== undefined && !(conceptBlend >= 0 && conceptBlend <= 1)) {
    throw new Error(`unet-memory: --concept wants a blend α in [0, 1], got ${conceptBlend}`);
  }
  const report = await runUNetMemory(sizes, (s) => process.stderr.write(`${s}\n`), {
    accountingOnly,
    hold,
    halfActivations,
    bindingLimit,
    conceptBlend,
    check,
  });
  writeFileSync(resolve(out), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`wrote ${resolve(out)}\n`);
}
