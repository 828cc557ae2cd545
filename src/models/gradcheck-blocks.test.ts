// End-to-end gradient checks of whole blocks: the same model code runs on the engine
// (fp32 WebGPU kernels, autograd) and on the float64 ReferenceOps backend, and every
// parameter's and input's engine gradient is compared with central finite differences of
// the reference forward, for L = Σ dY·out with a fixed random dY. Independent of the
// kernels' own backward references: only the reference *forwards* are shared.
// Also: no GPU memory leaks over training steps, and checkpointing changes no gradient.
import { beforeAll, describe, expect, it } from 'vitest';
import { Adam } from '../engine/adam.ts';
import { checkpoint } from '../engine/checkpoint.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { assertClose, difference } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { rng, type Rng } from '../../test/random.ts';
import type { ClipEncoderConfig } from './clip/clip-config.ts';
import { clipEncoder } from './clip/clip-encoder.ts';
import { EngineOps } from './engine-ops.ts';
import { resnetBlock, type ResnetOptions } from './layers/resnet-block.ts';
import type { LoraPair } from './lora.ts';
import { MapParamSource, Params } from './params.ts';
import { ReferenceOps, ReferenceParams, refTensor, type RefTensor } from './reference-ops.ts';
import { ParamRecorder, ShapeOps } from './shape-ops.ts';
import type { TensorOps } from './tensor-ops.ts';
import { transformer2d, type TransformerOptions } from './unet/transformer.ts';

/** A block under test: written once, run on every backend. */
type Model = <T>(ops: TensorOps<T>, p: Params<T>, xs: readonly T[]) => T;

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- the blocks

// (a) CLIP-style pre-norm transformer stack, causal, then a final LayerNorm and the mean
// over the sequence: x (B, N, C) → (B, C).
const CLIP: ClipEncoderConfig = {
  hidden_size: 8,
  intermediate_size: 16,
  num_attention_heads: 2,
  num_hidden_layers: 2,
  layer_norm_eps: 1e-5,
  hidden_act: 'quick_gelu',
};
const clipStack: Model = (ops, p, [x]) => {
  const h = clipEncoder(ops, p.sub('encoder'), CLIP, x, true);
  const C = CLIP.hidden_size;
  const n = ops.layerNorm(h, p.get('final_layer_norm.weight', [C]), p.get('final_layer_norm.bias', [C]), CLIP.layer_norm_eps);
  return ops.mean(n, [1]);
};

// (a') Transformer2D (BasicTransformerBlock: self- and cross-attention, GEGLU) with LoRA
// on all eight attention projections and the dual path at α = 0.25:
// x (1, 8, 4, 4), context and hard context (1, 5, 8) → (1, 8, 4, 4).
const TR: TransformerOptions = { channels: 8, heads: 2, crossAttentionDim: 8, groups: 4, useLinearProjection: false };
const LORA_RANK = 2;
const LORA_MODULES = ['attn1', 'attn2'].flatMap((a) =>
  ['to_q', 'to_k', 'to_v', 'to_out.0'].map((m) => `transformer_blocks.0.${a}.${m}`),
);
const transformerBlock: Model = (ops, p, [x, context, hardContext]) => {
  const C = TR.channels;
  const layers = new Map<string, LoraPair<typeof x>>(
    LORA_MODULES.map((m) => [m, { A: p.get(`lora.${m}.A`, [LORA_RANK, C]), B: p.get(`lora.${m}.B`, [C, LORA_RANK]) }]),
  );
  return transformer2d(ops, p, TR, x, { context, lora: { layers, scale: 0.5 }, dual: { hardContext, alpha: 0.25 } });
};

// (b) ResnetBlock2D with a time embedding: x (2, 4, 5, 5), temb (2, 7) → (2, 6, 5, 5).
const RES: ResnetOptions = { inChannels: 4, outChannels: 6, groups: 2, eps: 1e-5, tembChannels: 7 };
const resnet: Model = (ops, p, [x, temb]) => resnetBlock(ops, p, RES, x, temb);

interface Case {
  name: string;
  model: Model;
  inputs: Record<string, number[]>;
  seed: number;
}
const CASES: Case[] = [
  { name: 'CLIP transformer stack (2 layers, causal) + LayerNorm + mean', model: clipStack, inputs: { x: [2, 5, 8] }, seed: 11 },
  {
    name: 'Transformer2D with LoRA and the dual path (α = 0.25)',
    model: transformerBlock,
    inputs: { x: [1, 8, 4, 4], context: [1, 5, 8], hardContext: [1, 5, 8] },
    seed: 12,
  },
  { name: 'ResnetBlock2D (GroupNorm + SiLU + conv, time embedding, 1×1 shortcut)', model: resnet, inputs: { x: [2, 4, 5, 5], temb: [2, 7] }, seed: 13 },
];

// ---------------------------------------------------------------- data

/** Parameters scaled so that activations stay O(1): norms near 1, small biases, 1/√fan-in weights. */
function initParam(name: string, shape: readonly number[], r: Rng): Float32Array {
  const n = size(shape);
  if (/norm\d*\.weight$/.test(name)) return Float32Array.from(r.normals(n, 0.2), (v) => 1 + v);
  if (name.endsWith('.bias')) return r.normals(n, 0.2);
  return r.normals(n, 1 / Math.sqrt(size(shape.slice(1))));
}

interface Setup {
  params: Map<string, { shape: number[]; data: Float32Array }>;
  inputs: Map<string, { shape: number[]; data: Float32Array }>;
  outShape: readonly number[];
  dY: Float32Array;
}

/** The parameters the model asks for (via the shape backend), with seeded values. */
function setup(c: Case): Setup {
  const rec = new ParamRecorder();
  const out = c.model(new ShapeOps(), new Params(rec), Object.values(c.inputs).map((shape) => ({ shape })));
  const r = rng(c.seed);
  const params = new Map([...rec.requested].map(([name, shape]) => [name, { shape, data: initParam(name, shape, r) }]));
  const inputs = new Map(Object.entries(c.inputs).map(([name, shape]) => [name, { shape, data: r.normals(size(shape)) }]));
  return { params, inputs, outShape: out.shape, dY: r.normals(size(out.shape)) };
}

/** Engine parameters (kept leaves with requiresGrad) and the Params view over them. */
function engineParams(engine: Engine, s: Setup) {
  const map = new Map<string, Tensor>();
  for (const [name, { shape, data }] of s.params) map.set(name, engine.parameter(data, shape, name));
  return { map, params: new Params(new MapParamSource(map, (t) => t.shape)), dispose: () => map.forEach((t) => t.dispose()) };
}

// ---------------------------------------------------------------- the checks

/** Coordinates per tensor for finite differences: all of small tensors, this many of larger ones. */
const SAMPLES = 20;
const H = 1e-5;
// fp32 GPU gradients vs float64 central differences, per tensor, relative to the largest
// |FD gradient| among the sampled coordinates. Measured worst cases are in the report
// printed by each test (≈1e-6 of scale); the bound leaves room for other adapters.
const GRAD_TOL = { rtol: 2e-5, atol: 1e-6 };
// fp32 GPU forward vs float64 reference forward.
const FWD_TOL = { rtol: 1e-5, atol: 1e-7 };

let engine: Engine;
let ops: EngineOps;
const ref = new ReferenceOps();

beforeAll(async () => {
  engine = await testEngine();
  ops = new EngineOps(engine);
});

describe('end-to-end gradients of whole blocks: engine vs finite differences of the float64 reference', () => {
  it.each(CASES)('$name', async (c) => {
    const s = setup(c);
    // 1. Engine: forward, backward with dY, every gradient.
    const ep = engineParams(engine, s);
    const engineGrads = new Map<string, Float32Array>();
    let engineOut: Float32Array;
    try {
      engineOut = await engine.scopeAsync(async () => {
        const xs = [...s.inputs].map(([name, i]) => engine.tensor(i.data, i.shape, { requiresGrad: true, name }));
        const y = c.model(ops, ep.params, xs);
        expect(y.shape).toEqual(s.outShape);
        engine.backward(y, engine.tensor(s.dY, y.shape));
        for (const [name, t] of [...ep.map, ...xs.map((x) => [x.name!, x] as const)]) {
          if (!t.grad) throw new Error(`${name}: no gradient reached it`);
          engineGrads.set(name, await t.grad.read());
        }
        return y.read();
      });
    } finally {
      ep.dispose();
    }

    // 2. Reference: the same forward in float64, on the same (float32-valued) data.
    const tensors = new Map<string, RefTensor>();
    for (const [name, p] of s.params) tensors.set(name, refTensor(p.data, p.shape));
    const rp = new Params(new ReferenceParams(tensors));
    const rxs = [...s.inputs].map(([name, i]) => {
      const t = refTensor(i.data, i.shape);
      tensors.set(name, t); // perturbed like the parameters below
      return t;
    });
    const forward = () => c.model(ref, rp, rxs).data;
    const fwd = assertClose(engineOut, forward(), FWD_TOL, `${c.name}: forward`);

    // 3. Central differences of L = Σ dY·out at sampled coordinates of every tensor.
    const loss = () => {
      const y = forward();
      let l = 0;
      for (let i = 0; i < y.length; i++) l += s.dY[i] * y[i];
      return l;
    };
    const r = rng(c.seed + 100);
    const stats: { name: string; maxAbs: number; scale: number }[] = [];
    for (const [name, t] of tensors) {
      const n = t.data.length;
      const idx = n <= SAMPLES ? [...Array(n).keys()] : Array.from({ length: SAMPLES }, () => r.int(0, n - 1));
      const fd = idx.map((i) => {
        const old = t.data[i];
        t.data[i] = old + H;
        const lp = loss();
        t.data[i] = old - H;
        const lm = loss();
        t.data[i] = old;
        return (lp - lm) / (2 * H);
      });
      const g = engineGrads.get(name)!;
      expect(g.length, name).toBe(n);
      const d = assertClose(
        idx.map((i) => g[i]),
        fd,
        GRAD_TOL,
        `${c.name}: ∂L/∂${name} vs finite differences`,
      );
      stats.push({ name, ...d });
    }
    expect(stats.length).toBe(s.params.size + s.inputs.size);
    // Report: the worst error relative to its tensor's gradient scale, over tensors with a
    // gradient of substance (a few are zero in exact arithmetic, e.g. the key bias under
    // softmax's shift invariance: there only the absolute error means anything).
    const top = Math.max(...stats.map((x) => x.scale));
    const real = stats.filter((x) => x.scale > 1e-3 * top);
    const worst = real.reduce((a, x) => (x.maxAbs / x.scale > a.maxAbs / a.scale ? x : a));
    const tiny = stats.filter((x) => x.scale <= 1e-3 * top);
    console.info(
      `${c.name}: forward |Δ|/scale ${(fwd.maxAbs / fwd.scale).toExponential(1)}; ${stats.length} gradients, ` +
        `worst |Δ|/scale ${(worst.maxAbs / worst.scale).toExponential(1)} (${worst.name}), largest gradient ${top.toExponential(1)}` +
        (tiny.length ? `; ${tiny.length} ~zero (${tiny.map((x) => x.name).join(', ')}): max |Δ| ${Math.max(...tiny.map((x) => x.maxAbs)).toExponential(1)}` : ''),
    );
  });
});

describe('training-step memory and checkpointing', () => {
  it('a full training step (forward, backward, Adam, zeroGrad) returns liveBytes exactly, 3 steps', async () => {
    const c = CASES[1];
    const s = setup(c);
    const ep = engineParams(engine, s);
    const adam = new Adam(engine, [...ep.map.values()], { lr: 1e-2 });
    const first = [...ep.map.values()][0];
    try {
      const before = await first.read();
      const base = engine.pool.getStats().liveBytes; // parameters and optimizer state
      engine.pool.resetPeak();
      for (let step = 0; step < 3; step++) {
        await engine.scopeAsync(async () => {
          const xs = [...s.inputs].map(([name, i]) => engine.tensor(i.data, i.shape, { requiresGrad: true, name }));
          const y = c.model(ops, ep.params, xs);
          engine.backward(y, engine.tensor(s.dY, y.shape));
          adam.step();
          adam.zeroGrad();
          await y.read();
        });
        expect(engine.pool.getStats().liveBytes, `after step ${step + 1}`).toBe(base);
      }
      // The steps did allocate, and did train.
      expect(engine.pool.getStats().peakLiveBytes).toBeGreaterThan(base);
      expect(adam.stepCount).toBe(3);
      expect(difference(await first.read(), before).maxAbs).toBeGreaterThan(1e-3);
    } finally {
      adam.dispose();
      ep.dispose();
    }
  });

  it('checkpoint(resnet block) gives the same gradients as without, and holds less between passes', async () => {
    const c = CASES[2];
    const s = setup(c);
    const ep = engineParams(engine, s);
    const run = async (useCheckpoint: boolean) =>
      engine.scopeAsync(async () => {
        const xs = [...s.inputs].map(([name, i]) => engine.tensor(i.data, i.shape, { requiresGrad: true, name }));
        const start = engine.pool.getStats().liveBytes;
        const y = useCheckpoint
          ? checkpoint(engine, (x, temb) => c.model(ops, ep.params, [x, temb]), xs)
          : c.model(ops, ep.params, xs);
        const held = engine.pool.getStats().liveBytes - start;
        engine.backward(y, engine.tensor(s.dY, y.shape));
        const grads = new Map<string, Float32Array>();
        for (const [name, t] of [...ep.map, ...xs.map((x) => [x.name!, x] as const)]) {
          grads.set(name, await t.grad!.read());
          if (ep.map.has(name)) {
            t.grad!.dispose();
            t.grad = null;
          }
        }
        return { grads, held, y: await y.read() };
      });
    try {
      const plain = await run(false);
      const ckpt = await run(true);
      assertClose(ckpt.y, plain.y, { rtol: 1e-6, atol: 0 }, 'output');
      expect(ckpt.grads.size).toBe(s.params.size + s.inputs.size);
      for (const [name, g] of plain.grads) assertClose(ckpt.grads.get(name)!, g, { rtol: 1e-6, atol: 0 }, `∂L/∂${name}`);
      expect(ckpt.held).toBeLessThan(plain.held);
    } finally {
      ep.dispose();
    }
  });
});
