// The VAE without gradients releases each activation once it is consumed (ops.release): the
// same numbers as holding everything until the end, with a peak bounded by the one resnet
// that has the most bytes live — the first resnet of the last up block, at full resolution:
// its input, norm1's output (same size) and conv1's output. Measured with the buffer pool's
// accounting (peak bytes handed out), as bench:scale and bench/vae-decode-memory.ts report it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../engine/tensor.ts';
import { parseSafetensors } from '../../packs/safetensors.ts';
import { assertClose } from '../../../test/close.ts';
import { testEngine } from '../../../test/engine.ts';
import { rng } from '../../../test/random.ts';
import { EngineOps } from '../engine-ops.ts';
import { SafetensorsParams, fileSource } from '../engine-params.ts';
import { Params } from '../params.ts';
import type { VaeConfig } from './vae-config.ts';
import { vaeDecode, vaeEncode } from './vae.ts';

const TINY = new URL('../../../../shared/data/reference/tiny-sd/', import.meta.url);
const config: VaeConfig = JSON.parse(readFileSync(new URL('vae/config.json', TINY), 'utf8'));
const goldens = JSON.parse(readFileSync(new URL('goldens.json', TINY), 'utf8')).vae;
// float64-backed goldens vs fp32 GPU, as goldens.test.ts.
const TOL = { rtol: 1e-4, atol: 1e-6 };

describe('VAE without gradients: activations released once consumed', () => {
  it('decode and encode give the same numbers with a bounded pool peak', async () => {
    const engine = await testEngine();
    const file = parseSafetensors(new Uint8Array(readFileSync(new URL('vae/diffusion_pytorch_model.safetensors', TINY))));
    const source = new SafetensorsParams(engine, [fileSource(file)]);
    const params = new Params(source);
    const ops = new EngineOps(engine);
    // The same backend without release: everything lives until the decode's scope ends.
    const holding: EngineOps = Object.create(ops);
    Object.defineProperty(holding, 'release', { value: undefined });
    const S = 32; // latent 32×32 → 64 px: the activations dwarf the tiny VAE's weights
    const latent = rng(5).normals(config.latent_channels * S * S);

    const measure = async (run: (latent: Tensor) => Tensor, warmUp = false) => {
      await engine.sync();
      engine.pool.resetPeak();
      const before = engine.pool.getStats().liveBytes;
      const out = await engine.noGrad(() =>
        engine.scopeAsync(async () => run(engine.tensor(latent, [1, config.latent_channels, S, S])).read()),
      );
      const s = engine.pool.getStats();
      if (!warmUp) expect(s.liveBytes).toBe(before); // nothing leaks either way
      return { out, peak: s.peakLiveBytes - before };
    };
    const decode = (o: EngineOps) => (z: Tensor) => vaeDecode(o, params, config, z);
    try {
      await measure(decode(holding), true); // uploads the weights (lazily, on first use)
      const held = await measure(decode(holding));
      const lean = await measure(decode(ops));
      expect(lean.out).toEqual(held.out);
      // The bound: the last up block's first resnet (Cin = the block before's width, Cout =
      // block_out_channels[0]) at the output resolution, plus the latent-sized input.
      const ch = config.block_out_channels;
      const f = 2 ** (ch.length - 1);
      const pixels = (S * f) ** 2;
      const bound = (2 * ch[1] + ch[0]) * pixels * 4 + config.latent_channels * S * S * 4;
      console.info(
        `tiny VAE decode ${S}×${S} → ${S * f} px: pool peak ${held.peak} B holding, ${lean.peak} B releasing (bound ${bound} B)`,
      );
      expect(lean.peak).toBeLessThanOrEqual(bound);
      expect(lean.peak).toBeLessThan(0.75 * held.peak);

      // fp16 activations (shader-f16): the same decode at about half the activation memory
      // — only the fp32 output image (converted at the end) and the f32 statistics are not halved.
      if (engine.f16) {
        const half = await measure(decode(new EngineOps(engine, { halfActivations: true })));
        console.info(`tiny VAE decode with fp16 activations: pool peak ${half.peak} B (fp32: ${lean.peak} B)`);
        expect(half.peak).toBeLessThanOrEqual(0.6 * lean.peak);
      }

      // encode: same numbers with and without release (an image of the output's size)
      const image = rng(6).normals(config.in_channels * pixels);
      const enc = async (o: EngineOps) =>
        engine.noGrad(() =>
          engine.scopeAsync(async () =>
            vaeEncode(o, params, config, engine.tensor(image, [1, config.in_channels, S * f, S * f])).mean.read(),
          ),
        );
      expect(await enc(ops)).toEqual(await enc(holding));

      // and the released path still matches the diffusers goldens
      const g = goldens.decode_input_latent;
      const got = await engine.noGrad(() =>
        engine.scopeAsync(async () => vaeDecode(ops, params, config, engine.tensor(g.data, g.shape)).read()),
      );
      assertClose(got, goldens.decode_sample.data, TOL, 'decode (released) vs goldens');
      const gi = goldens.image;
      const mean = await engine.noGrad(() =>
        engine.scopeAsync(async () => vaeEncode(ops, params, config, engine.tensor(gi.data, gi.shape)).mean.read()),
      );
      assertClose(mean, goldens.encode_latent_dist_mean.data, TOL, 'encode mean (released) vs goldens');
    } finally {
      source.dispose();
    }
  }, 120_000);
});
