// One tuning step's gradients — through the text encoder (v*), the dual-path UNet and the
// LoRA offsets — against central finite differences of the same objective evaluated in
// float64 by the reference backend (the same model code, src/models/reference-ops.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertClose } from '../../test/close.ts';
import { testEngine } from '../../test/engine.ts';
import { loadTinyPack, TINY_SD } from '../../test/tiny-pack.ts';
import { rng } from '../../test/random.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { LoraPair } from '../models/lora.ts';
import { Params } from '../models/params.ts';
import { ReferenceOps, ReferenceParams, refTensor, type RefTensor } from '../models/reference-ops.ts';
import { parseSafetensors } from '../packs/safetensors.ts';
import { PackRuntime } from './pack-runtime.ts';
import { tuningLoss, type TuningLossInputs } from './personalize.ts';
import { encodePrompt, tokenizeWithPlaceholder } from './prompt.ts';

let rt: PackRuntime;
beforeAll(async () => {
  rt = await PackRuntime.open(await testEngine(), await loadTinyPack());
});
afterAll(() => rt?.dispose());

describe('tuning gradients vs finite differences', () => {
  it('v*, A_i and B_i gradients of the full loss match central differences of the float64 objective', async () => {
    const { engine } = rt;
    const r = rng(11);
    const targets = rt.encoder!.targets;
    const C = rt.tokenDim;
    // θ and θ₀ (θ₀ ≠ θ so the anchors contribute), z_t, ε
    const vStar = r.normals(C, 0.05);
    const v0 = r.normals(C, 0.05);
    const lora = targets.map((t) => ({
      t,
      A: r.normals(4 * t.in, 0.3),
      B: r.normals(t.out * 4, 0.1),
      A0: r.normals(4 * t.in, 0.3),
      B0: r.normals(t.out * 4, 0.1),
    }));
    const zt = r.normals(4 * 8 * 8);
    const eps = r.normals(4 * 8 * 8);
    const tokens = tokenizeWithPlaceholder(rt, 'a photo of S* on the beach', 'S*', 2368);
    const hard = await engine.scopeAsync(async () => engine.noGrad(() => encodePrompt(rt, tokens, null)).read());
    const common = { t: 500, tokens, blend: 0.25, lambdaWeights: 0.3, lambdaEmbedding: 0.7 };

    // 1. engine: gradients by backprop
    const grads = await engine.scopeAsync(async () => {
      const pv = engine.parameter(vStar, [C], 'v*');
      const pairs = new Map<string, LoraPair<Tensor>>();
      const pairs0 = new Map<string, LoraPair<Tensor>>();
      for (const l of lora) {
        pairs.set(l.t.module, { A: engine.parameter(l.A, [4, l.t.in]), B: engine.parameter(l.B, [l.t.out, 4]) });
        pairs0.set(l.t.module, { A: engine.tensor(l.A0, [4, l.t.in]), B: engine.tensor(l.B0, [l.t.out, 4]) });
      }
      const x: TuningLossInputs<Tensor> = {
        ...common,
        theta: { vStar: pv, lora: pairs, scale: 1 },
        theta0: { vStar: engine.tensor(v0, [C]), lora: pairs0 },
        zt: engine.tensor(zt, [1, 4, 8, 8]),
        eps: engine.tensor(eps, [1, 4, 8, 8]),
        hardContext: engine.tensor(hard, [1, 77, C]),
      };
      const { total } = tuningLoss(rt.ops, rt.text, rt.unet, x);
      engine.backward(total);
      const out = { v: await pv.grad!.read(), A: new Map<string, Float32Array>(), B: new Map<string, Float32Array>() };
      for (const [m, p] of pairs) {
        out.A.set(m, await p.A.grad!.read());
        out.B.set(m, await p.B.grad!.read());
      }
      [pv, ...[...pairs.values()].flatMap((p) => [p.A, p.B])].forEach((p) => p.dispose());
      return out;
    });

    // 2. float64 reference: the same objective, perturbed one coordinate at a time
    const ops = new ReferenceOps({ fp32TimestepAngles: true });
    const st = (p: string) => parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, p))));
    const text = {
      params: new Params(ReferenceParams.fromSafetensors([st('text_encoder/model.safetensors')])),
      config: rt.text.config,
    };
    const unetP = {
      params: new Params(ReferenceParams.fromSafetensors([st('unet/diffusion_pytorch_model.safetensors')])),
      config: rt.unet.config,
    };
    const rv = refTensor(vStar, [C]);
    const rPairs = new Map<string, LoraPair<RefTensor>>(
      lora.map((l) => [l.t.module, { A: refTensor(l.A, [4, l.t.in]), B: refTensor(l.B, [l.t.out, 4]) }]),
    );
    const rPairs0 = new Map<string, LoraPair<RefTensor>>(
      lora.map((l) => [l.t.module, { A: refTensor(l.A0, [4, l.t.in]), B: refTensor(l.B0, [l.t.out, 4]) }]),
    );
    const rx: TuningLossInputs<RefTensor> = {
      ...common,
      theta: { vStar: rv, lora: rPairs, scale: 1 },
      theta0: { vStar: refTensor(v0, [C]), lora: rPairs0 },
      zt: refTensor(zt, [1, 4, 8, 8]),
      eps: refTensor(eps, [1, 4, 8, 8]),
      hardContext: refTensor(hard, [1, 77, C]),
    };
    const loss = () => tuningLoss(ops, text, unetP, rx).total.data[0];
    const h = 1e-4;
    const fd = (arr: Float64Array, i: number) => {
      const old = arr[i];
      arr[i] = old + h;
      const lp = loss();
      arr[i] = old - h;
      const lm = loss();
      arr[i] = old;
      return (lp - lm) / (2 * h);
    };
    const picks: { label: string; data: Float64Array; i: number; engine: number }[] = [];
    for (const i of [0, 5, 17, 31]) picks.push({ label: `v*[${i}]`, data: rv.data, i, engine: grads.v[i] });
    for (const m of [targets[0].module, targets[13].module, targets[26].module]) {
      const p = rPairs.get(m)!;
      picks.push({ label: `${m}.A[3]`, data: p.A.data, i: 3, engine: grads.A.get(m)![3] });
      picks.push({ label: `${m}.B[7]`, data: p.B.data, i: 7, engine: grads.B.get(m)![7] });
    }
    const numeric = picks.map((p) => fd(p.data, p.i));
    const analytic = picks.map((p) => p.engine);
    const d = assertClose(
      analytic,
      numeric,
      { rtol: 1e-5, atol: 1e-7 },
      'engine gradients vs float64 finite differences',
    );
    console.info(
      `tuning gradcheck: ${picks.length} coordinates, max |Δ| ${d.maxAbs.toExponential(2)} of scale ${d.scale.toExponential(2)}`,
    );
    expect(numeric.every((g) => g !== 0)).toBe(true);
  });
});
