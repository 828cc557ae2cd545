// The UNet without gradients releases each intermediate once consumed (ops.release) and runs
// the transformers' feed-forward over token chunks: the same numbers, bit for bit, as
// holding every activation of a block and projecting all tokens at once — only the release
// order and the row ranges of the per-token layers change — with a lower pool peak.
// And bench/unet-memory.ts's accounting (no dispatches) gives the pool numbers of a real call.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runUNetMemory } from '../../../bench/unet-memory.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { parseSafetensors } from '../../packs/safetensors.ts';
import { assertClose } from '../../../test/close.ts';
import { testEngine } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { EngineOps } from '../engine-ops.ts';
import { SafetensorsParams, fileSource, frozenWeightsF16 } from '../engine-params.ts';
import type { LoraPair } from '../lora.ts';
import { Params } from '../params.ts';
import { unet } from './unet.ts';
import { resolveUNetConfig } from './unet-config.ts';

const TINY = new URL('../../../../shared/data/reference/tiny-sd/', import.meta.url);
const rawConfig = JSON.parse(readFileSync(new URL('unet/config.json', TINY), 'utf8'));
const cfg = resolveUNetConfig(rawConfig);
const goldens = JSON.parse(readFileSync(new URL('goldens.json', TINY), 'utf8'));
const file = () => parseSafetensors(new Uint8Array(readFileSync(new URL('unet/diffusion_pytorch_model.safetensors', TINY))));
// float64-backed goldens vs fp32 GPU, as goldens.test.ts.
const TOL = { rtol: 1e-4, atol: 1e-5 };

describe('UNet without gradients: intermediates released, feed-forward in token chunks', () => {
  it('gives the same numbers as holding everything, with a lower pool peak', async () => {
    const engine = await testEngine();
    const f = file();
    const source = new SafetensorsParams(engine, [fileSource(f)]);
    // and with the weights a pack holds in fp16 (the f16-weight matmul kernels)
    const sourceF16 = new SafetensorsParams(engine, [fileSource(f)], { f16: frozenWeightsF16, f32ToF16: true });
    let params = new Params(source);
    const ops = new EngineOps(engine);
    // The same backend without release: every activation lives until its segment (or the
    // call) returns, and without release the feed-forward is not chunked either.
    const holding: EngineOps = Object.create(ops);
    Object.defineProperty(holding, 'release', { value: undefined });
    // latent 12×12, batch 2: 144 tokens at the attention level (32 wide). 64 KiB chunks
    // split the feed-forward's 288 KiB projection into five: 29 + 29 + 29 + 29 + 28 tokens.
    const S = 12;
    const B = 2;
    const chunkBytes = 64 * 1024;
    const r = rng(11);
    const sample = r.normals(B * cfg.in_channels * S * S);
    const context = r.normals(B * 77 * cfg.cross_attention_dim);
    const hard = r.normals(B * 77 * cfg.cross_attention_dim);
    const rank = 4;
    const loraNames = f
      .names()
      .filter((n) => /attn[12]\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(n))
      .map((n) => n.slice(0, -'.weight'.length));
    expect(loraNames.length).toBeGreaterThan(0);
    const loraValues = loraNames.map((n) => {
      const [out, inp] = f.info(`${n}.weight`).shape;
      return { n, out, inp, A: r.normals(rank * inp, 0.1), B: r.normals(out * rank, 0.1) };
    });

    type Case = 'plain' | 'lora, dual α = 0.3' | 'lora, dual α tensor';
    const measure = async (o: EngineOps, kind: Case, warmUp = false) => {
      await engine.sync();
      engine.pool.resetPeak();
      const before = engine.pool.getStats().liveBytes;
      const out = await engine.noGrad(() =>
        engine.scopeAsync(async () => {
          const layers = new Map<string, LoraPair<Tensor>>(
            loraValues.map((l) => [l.n, { A: engine.tensor(l.A, [rank, l.inp]), B: engine.tensor(l.B, [l.out, rank]) }]),
          );
          const ctx = engine.tensor(context, [B, 77, cfg.cross_attention_dim]);
          const hardContext = engine.tensor(hard, [B, 77, cfg.cross_attention_dim]);
          const alpha = kind === 'lora, dual α tensor' ? engine.tensor([0.3], [1]) : 0.3;
          const cond =
            kind === 'plain'
              ? { context: ctx, lora: null, dual: null }
              : { context: ctx, lora: { layers, scale: 0.5 }, dual: { hardContext, alpha } };
          return unet(o, params, cfg, {
            sample: engine.tensor(sample, [B, cfg.in_channels, S, S]),
            timesteps: [500, 500],
            cond,
            checkpointing: true,
            feedForwardChunkBytes: chunkBytes,
          }).read();
        }),
      );
      const s = engine.pool.getStats();
      if (!warmUp) expect(s.liveBytes).toBe(before); // nothing leaks either way
      return { out, peak: s.peakLiveBytes - before };
    };
    try {
      await measure(holding, 'plain', true); // uploads the weights (lazily, on first use)
      for (const kind of ['plain', 'lora, dual α = 0.3', 'lora, dual α tensor'] as const) {
        const held = await measure(holding, kind);
        const lean = await measure(ops, kind);
        console.info(`tiny UNet ${S}×${S}, batch ${B}, ${kind}: pool peak ${held.peak} B holding, ${lean.peak} B releasing`);
        expect(lean.out.every(Number.isFinite)).toBe(true);
        expect(lean.out).toEqual(held.out);
        expect(lean.peak).toBeLessThan(held.peak);
      }
      params = new Params(sourceF16);
      await measure(holding, 'plain', true);
      for (const kind of ['plain', 'lora, dual α = 0.3'] as const) {
        const held = await measure(holding, kind);
        const lean = await measure(ops, kind);
        expect(lean.out.every(Number.isFinite)).toBe(true);
        expect(lean.out).toEqual(held.out);
      }
      params = new Params(source);

      // and the released, chunked path still matches diffusers (64 tokens in 4 chunks)
      const g = goldens.unet;
      const ref = (v: string) => v.split('.').reduce((o, k) => o[k], goldens);
      const eh = ref(g.encoder_hidden_states);
      const got = await engine.noGrad(() =>
        engine.scopeAsync(async () =>
          unet(ops, params, cfg, {
            sample: engine.tensor(g.latent.data, g.latent.shape),
            timesteps: [g.timestep],
            cond: { context: engine.tensor(eh.data, eh.shape), lora: null, dual: null },
            checkpointing: true,
            feedForwardChunkBytes: 16 * 1024,
          }).read(),
        ),
      );
      assertClose(got, g.noise_pred.data, TOL, 'noise_pred (released, chunked) vs goldens');
    } finally {
      source.dispose();
      sourceF16.dispose();
    }
  }, 120_000);

  it('bench/unet-memory.ts: the accounted pool peak is the real one', async () => {
    const engine = await testEngine();
    const f = file();
    const model = { config: rawConfig, keys: f.names().map((name) => ({ name, shape: [...f.info(name).shape] })) };
    const run = (accountingOnly: boolean) => runUNetMemory([64, 96], () => {}, { model, engine, accountingOnly });
    const real = await run(false);
    const accounted = await run(true);
    expect(accounted.weightBytes).toBe(real.weightBytes);
    expect(accounted.rows.length).toBe(2);
    accounted.rows.forEach((a, i) => {
      const b = real.rows[i];
      expect(a.activationPeakBytes).toBeGreaterThan(0);
      expect(a.activationPeakBytes).toBe(b.activationPeakBytes);
      expect(a.largestBufferBytes).toBe(b.largestBufferBytes);
      expect(a.peakAt).toBe(b.peakAt);
      expect(a.peakLiveSet).toEqual(b.peakLiveSet);
    });
    // the engine is usable afterwards: dispatches run again
    const ops = new EngineOps(engine);
    const y = await engine.noGrad(() =>
      engine.scopeAsync(async () => ops.add(engine.full([4], 2), engine.full([4], 1)).read()),
    );
    expect([...y]).toEqual([3, 3, 3, 3]);
  }, 120_000);
});
