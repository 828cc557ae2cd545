// Full-width blocks of the real models, numerically: the same model code on the engine (WGSL
// kernels, fp16 frozen weights as the product holds them) and on the float64 ReferenceOps
// backend (the kernels' plain-loop references), with random weights of the real names and
// shapes (../shared/data/reference/keys). Small spatial sizes, real channel widths — the
// widths are where the wide-head attention kernels, the fp16 weight reads and the
// binding-limit splits run that the tiny pack never reaches:
//   - the VAE mid-block at 512 channels (resnet, one attention head of width 512, resnet), 8×8;
//   - the widest SD 1.5 UNet layer at 1280 channels: the mid-block's resnet (time embedding
//     1280) and Transformer2D (8 heads × 160, cross-attention on a 77×768 context), 4×4.
// sd-scale.test.ts runs whole models at this width end to end but only checks finiteness.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roundToF16 } from '../engine/dtype.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { assertClose, type Difference } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { rng } from '../../test/random.ts';
import { EngineOps } from './engine-ops.ts';
import { frozenWeightsF16 } from './engine-params.ts';
import { resnetBlock } from './layers/resnet-block.ts';
import { MapParamSource, Params } from './params.ts';
import { ReferenceOps, ReferenceParams, refTensor, type RefTensor } from './reference-ops.ts';
import { ParamRecorder, ShapeOps } from './shape-ops.ts';
import type { TensorOps } from './tensor-ops.ts';
import { transformer2d } from './unet/transformer.ts';
import { resolveUNetConfig } from './unet/unet-config.ts';
import type { VaeConfig } from './vae/vae-config.ts';
import { vaeMidBlock } from './vae/vae.ts';

const KEYS = new URL('../../../shared/data/reference/keys/', import.meta.url);
const readKeys = (stem: string) => JSON.parse(readFileSync(new URL(`${stem}.json`, KEYS), 'utf8'));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// GPU (fp32 activations and accumulation, fp16 weights) vs float64 on the same fp16-rounded
// weights, |Δ| ≤ rtol·max|expected| + atol: what remains is fp32 summation over up to
// 11 520 products per output (the 1280-channel 3×3 conv) and fp32 softmax/norm statistics.
// Measured on llvmpipe: see the numbers each test prints (≈1e-6 of scale); 1e-4 leaves room
// for other adapters' summation orders and still fails on any wrong element, misread half
// or wrong head split (those are O(1) of scale off).
const TOL = { rtol: 1e-4, atol: 1e-6 };

/** A block under test, written once against TensorOps. */
type Block = <T>(ops: TensorOps<T>, p: Params<T>, xs: readonly T[]) => T;

interface Case {
  /** The real model's key list: every parameter the block asks for must be in it, same shape. */
  keys: string;
  /** Prefix of the block's parameters in the real model. */
  prefix: string;
  block: Block;
  inputs: Record<string, number[]>;
  seed: number;
}

// --- the blocks --------------------------------------------------------------------------

const vae: VaeConfig = JSON.parse(readFileSync(new URL('sd-vae.config.json', KEYS), 'utf8'));
const VAE_C = vae.block_out_channels[vae.block_out_channels.length - 1];
const vaeMid: Block = (ops, p, [x]) => vaeMidBlock(ops, p, vae, x, VAE_C);

const unetCfg = resolveUNetConfig(JSON.parse(readFileSync(new URL('sd15-unet.config.json', KEYS), 'utf8')));
const UNET_C = unetCfg.block_out_channels[unetCfg.block_out_channels.length - 1];
const UNET_HEADS = unetCfg.heads[unetCfg.heads.length - 1];
const unetMidLayer: Block = (ops, p, [x, temb, context]) => {
  const r = resnetBlock(
    ops,
    p.sub('resnets.0'),
    {
      inChannels: UNET_C,
      outChannels: UNET_C,
      groups: unetCfg.norm_num_groups,
      eps: unetCfg.norm_eps,
      tembChannels: unetCfg.timeEmbedDim,
    },
    x,
    temb,
  );
  return transformer2d(
    ops,
    p.sub('attentions.0'),
    {
      channels: UNET_C,
      heads: UNET_HEADS,
      crossAttentionDim: unetCfg.cross_attention_dim,
      groups: unetCfg.norm_num_groups,
      useLinearProjection: unetCfg.use_linear_projection,
    },
    r,
    { context, lora: null, dual: null },
  );
};

// --- data --------------------------------------------------------------------------------

/** Norms near 1 (not exactly: a wrong affine would cancel), small biases, 1/√fan-in weights. */
function initParam(name: string, shape: readonly number[], r: ReturnType<typeof rng>): Float32Array {
  const n = size(shape);
  if (/norm\d*\.weight$|group_norm\.weight$/.test(name)) return Float32Array.from(r.normals(n, 0.2), (v) => 1 + v);
  if (name.endsWith('.bias')) return r.normals(n, 0.1);
  return r.normals(n, 1 / Math.sqrt(size(shape.slice(1))));
}

interface Run {
  got: Float32Array;
  want: Float64Array;
  d: Difference;
}

let engine: Engine;
const report: string[] = [];

beforeAll(async () => {
  engine = await testEngine();
});

afterAll(() => console.info(`full-width blocks, GPU vs float64: ${report.join('; ')}`));

// fp16 activations (inference, shader-f16) on top: every stored activation is rounded to fp16
// (2⁻¹¹ relative), all sums and statistics stay f32. Measured on llvmpipe: see the printed
// numbers (≈1e-3 of scale); 6e-3 is the bound goldens-f16.test.ts states for whole models.
const HALF_TOL = { rtol: 6e-3, atol: 1e-4 };

async function runCase(c: Case, label: string, bindingLimit?: number, half = false): Promise<Run> {
  // 1. the parameters the block asks for, checked against the real model's names and shapes
  const rec = new ParamRecorder();
  c.block(new ShapeOps(), new Params(rec), Object.values(c.inputs).map((shape) => ({ shape })));
  const real = new Map<string, number[]>(
    (readKeys(`${c.keys}.keys`).keys as { name: string; shape: number[] }[]).map((k) => [k.name, k.shape]),
  );
  for (const [name, shape] of rec.requested) {
    expect(real.get(`${c.prefix}.${name}`), `${c.prefix}.${name} in ${c.keys}`).toEqual(shape);
  }
  // 2. seeded values; the weights the product keeps fp16 are rounded to fp16 for both sides
  const r = rng(c.seed);
  const values = new Map<string, { shape: number[]; data: Float32Array; f16: boolean }>();
  for (const [name, shape] of rec.requested) {
    const f16 = frozenWeightsF16(name, shape);
    const data = initParam(name, shape, r);
    values.set(name, { shape, data: f16 ? roundToF16(data) : data, f16 });
  }
  const inputs = Object.entries(c.inputs).map(([, shape]) => ({ shape, data: r.normals(size(shape)) }));
  // 3. float64 reference
  const refMap = new Map<string, RefTensor>([...values].map(([n, v]) => [n, refTensor(v.data, v.shape)]));
  const want = c.block(
    new ReferenceOps(),
    new Params(new ReferenceParams(refMap)),
    inputs.map((x) => refTensor(x.data, x.shape)),
  ).data;
  refMap.clear();
  // 4. the engine, without gradients (as generate runs it)
  if (bindingLimit !== undefined) engine.setBindingLimit(bindingLimit);
  let got: Float32Array;
  try {
    got = await engine.noGrad(() =>
      engine.scopeAsync(async () => {
        const map = new Map<string, Tensor>();
        for (const [n, v] of values) map.set(n, engine.tensor(v.data, v.shape, { dtype: v.f16 ? 'f16' : 'f32' }));
        const p = new Params(new MapParamSource(map, (t) => t.shape));
        const ops = new EngineOps(engine, { halfActivations: half });
        const xs = inputs.map((x) => ops.toActivation(engine.tensor(x.data, x.shape)));
        const y = c.block(ops, p, xs);
        expect(y.dtype).toBe(half ? 'f16' : 'f32');
        return ops.toFloat32(y).read();
      }),
    );
  } finally {
    if (bindingLimit !== undefined) engine.setBindingLimit(undefined);
  }
  const d = assertClose(got, want, half ? HALF_TOL : TOL, label);
  report.push(`${label}: max |Δ| ${(d.maxAbs / d.scale).toExponential(1)} of scale ${d.scale.toFixed(2)}`);
  return { got, want, d };
}

const VAE_CASE: Case = {
  keys: 'sd-vae',
  prefix: 'decoder.mid_block',
  block: vaeMid,
  inputs: { x: [1, VAE_C, 8, 8] },
  seed: 91,
};

describe('full-width blocks: engine vs float64 reference', () => {
  it('VAE mid-block at 512 channels (resnet, attention 1 head × 512, resnet), 8×8', async () => {
    const { got } = await runCase(VAE_CASE, 'VAE mid-block');
    expect(got.length).toBe(VAE_C * 64);
  }, 120_000);

  // The 512→512 3×3 conv weight is 4.5 MiB in fp16: at a 1 MiB limit conv2d splits it into
  // channel blocks copied out in fp16, as the 512 px decode does on a 128 MiB limit.
  it('VAE mid-block at 512 channels under a 1 MiB binding limit (the splits, fp16 weight blocks)', async () => {
    await runCase(VAE_CASE, 'VAE mid-block, 1 MiB bindings', 1 << 20);
  }, 120_000);

  it('VAE mid-block at 512 channels with fp16 activations (inference, shader-f16)', async () => {
    if (!engine.f16) throw new Error('the test adapter has no shader-f16 (lavapipe has it)');
    await runCase(VAE_CASE, 'VAE mid-block, fp16 activations', undefined, true);
  }, 120_000);

  it('SD 1.5 UNet widest layer: resnet 1280 (temb) + Transformer2D 8 heads × 160, context 77×768, 4×4', async () => {
    expect([UNET_C, UNET_HEADS, UNET_C / UNET_HEADS, unetCfg.cross_attention_dim]).toEqual([1280, 8, 160, 768]);
    const { got } = await runCase(
      {
        keys: 'sd15-unet',
        prefix: 'mid_block',
        block: unetMidLayer,
        inputs: { x: [1, UNET_C, 4, 4], temb: [1, unetCfg.timeEmbedDim], context: [1, 77, unetCfg.cross_attention_dim] },
        seed: 92,
      },
      'UNet mid layer',
    );
    expect(got.length).toBe(UNET_C * 16);
  }, 180_000);
});
