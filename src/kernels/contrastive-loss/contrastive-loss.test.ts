import { describe, expect, it } from 'vitest';
import { testEngine } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { f64, gradcheck } from '../../../test/gradcheck.ts';
import { rng } from '../../../test/random.ts';
import { contrastiveBackwardRef, contrastiveForwardRef, type ContrastiveShape } from './contrastive-loss-reference.ts';
import { contrastiveBackward, contrastiveForward, contrastiveLossKernels } from './contrastive-loss-kernels.ts';
import { contrastiveLoss } from './contrastive-loss.ts';

// fp32 dot products over C ≤ 70 channels and fp32 exp/log against float64: 2e-5 of the
// largest |value| (loss or gradient entry) plus 1e-6 absolute.
const TOL = { rtol: 2e-5, atol: 1e-6 };

describe('contrastiveLoss', () => {
  it('compiles', async () => {
    const e = await testEngine();
    for (const k of contrastiveLossKernels) await e.compile(k);
  });

  it('reference equals Eq. 2 written out by hand (B = 2, K = 1, C = 1)', () => {
    // v = (1, 2), P = (3, −1), τ = 1: row 0 has s = 3, n = 2; row 1 has s = −2, n = 2.
    const L0 = -Math.log(Math.exp(3) / (Math.exp(3) + Math.exp(2)));
    const L1 = -Math.log(Math.exp(-2) / (Math.exp(-2) + Math.exp(2)));
    expect(contrastiveForwardRef([1, 2], [3, -1], { B: 2, K: 1, C: 1 }, 1)).toBeCloseTo((L0 + L1) / 2, 14);
    // One image: no negatives, the loss is 0 whatever the positives.
    expect(contrastiveForwardRef([1, 2, 3], [4, 5, 6, -1, 0, 2], { B: 1, K: 2, C: 3 }, 0.1)).toBe(0);
  });

  it.each([
    { B: 3, K: 2, C: 4, tau: 0.5 },
    { B: 4, K: 1, C: 3, tau: 0.07 },
    { B: 1, K: 3, C: 2, tau: 1 },
  ])('reference gradient matches central finite differences (B=$B, K=$K, C=$C, τ=$tau)', ({ B, K, C, tau }) => {
    const s: ContrastiveShape = { B, K, C };
    const r = rng(B * 100 + K * 10 + C);
    // |v·P|/τ of a few units: the softmaxes are neither saturated nor uniform.
    const scale = Math.sqrt(tau / Math.sqrt(C));
    const v = f64(r.normals(B * C, scale));
    const P = f64(r.normals(B * K * C, scale));
    gradcheck(
      ([v, P]) => [contrastiveForwardRef(v, P, s, tau)],
      ([v, P], dL) => contrastiveBackwardRef(v, P, s, tau, dL[0]),
      [v, P],
    );
  });

  // Odd shapes; B = 70 > 64 makes the single-workgroup loss pass loop over rows, and
  // B·C, B·K·C span several 64-wide workgroups with a partial last one.
  it.each([
    { B: 1, K: 1, C: 1 },
    { B: 2, K: 3, C: 5 },
    { B: 5, K: 4, C: 33 },
    { B: 13, K: 7, C: 70 },
    { B: 70, K: 3, C: 9 },
  ])('GPU forward and backward match the reference (B=$B, K=$K, C=$C)', async ({ B, K, C }) => {
    const e = await testEngine();
    const s = { B, K, C };
    const tau = 0.2;
    const r = rng(B * 1000 + K * 100 + C);
    const scale = Math.sqrt((2 * tau) / Math.sqrt(C));
    const vs = r.normals(B * C, scale);
    const Ps = r.normals(B * K * C, scale);
    await e.scopeAsync(async () => {
      const v = e.tensor(vs, [B, C]);
      const P = e.tensor(Ps, [B, K, C]);
      const f = contrastiveForward(e, v, P, tau);
      expect(f.loss.shape).toEqual([1]);
      assertClose(await f.loss.read(), [contrastiveForwardRef(vs, Ps, s, tau)], TOL, 'L');
      const [dV, dP] = contrastiveBackward(e, v, P, f.logits, f.stats, e.tensor([0.7], [1]), tau);
      const [wantV, wantP] = contrastiveBackwardRef(vs, Ps, s, tau, 0.7);
      assertClose(await dV!.read(), wantV, TOL, 'dV');
      assertClose(await dP!.read(), wantP, TOL, 'dP');
    });
  });

  it('stays finite and accurate with logits of ±5000 (τ = 0.01, |v·T| up to 50), where a naive exp overflows', async () => {
    const e = await testEngine();
    const [B, K, C] = [4, 3, 8];
    const tau = 0.01;
    const r = rng(5);
    const vs = r.normals(B * C);
    const Ps = r.normals(B * K * C);
    // Scale both so that the largest |dot product| is exactly 50.
    let maxDot = 0;
    const dotAt = (x: Float32Array, xo: number, y: Float32Array, yo: number) => {
      let d = 0;
      for (let c = 0; c < C; c++) d += x[xo + c] * y[yo + c];
      return d;
    };
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < K; k++) maxDot = Math.max(maxDot, Math.abs(dotAt(vs, b * C, Ps, (b * K + k) * C)));
      for (let j = 0; j < B; j++) if (j !== b) maxDot = Math.max(maxDot, Math.abs(dotAt(vs, b * C, vs, j * C)));
    }
    const f = Math.sqrt(50 / maxDot);
    const v = vs.map((x) => x * f);
    const P = Ps.map((x) => x * f);
    const s = { B, K, C };
    // The case is out of a naive implementation's range: e^{5000} is Infinity even in float64.
    const naive = (() => {
      let total = 0;
      for (let b = 0; b < B; b++) {
        let pos = 0;
        let neg = 0;
        for (let k = 0; k < K; k++) pos += Math.exp(dotAt(v, b * C, P, (b * K + k) * C) / tau);
        for (let j = 0; j < B; j++) if (j !== b) neg += Math.exp(dotAt(v, b * C, v, j * C) / tau);
        total += -Math.log(pos / (pos + neg));
      }
      return total / B;
    })();
    expect(Number.isFinite(naive)).toBe(false);
    const want = contrastiveForwardRef(v, P, s, tau);
    expect(Number.isFinite(want)).toBe(true);
    const [wantV, wantP] = contrastiveBackwardRef(v, P, s, tau, 1);
    await e.scopeAsync(async () => {
      const vt = e.tensor(v, [B, C]);
      const Pt = e.tensor(P, [B, K, C]);
      const fw = contrastiveForward(e, vt, Pt, tau);
      const got = await fw.loss.read();
      expect(Number.isFinite(got[0])).toBe(true);
      // Logits of 5000 carry fp32 rounding of ~5000·2⁻²⁴·√C ≈ 1e-3 in absolute terms.
      assertClose(got, [want], { rtol: 1e-5, atol: 5e-3 }, 'L at logits ±5000');
      const [dV, dP] = contrastiveBackward(e, vt, Pt, fw.logits, fw.stats, e.tensor([1], [1]), tau);
      const gv = await dV!.read();
      const gp = await dP!.read();
      expect([...gv, ...gp].every(Number.isFinite)).toBe(true);
      // The softmax weights e^{s − LSE} inherit that 1e-3 logit error as a relative error.
      assertClose(gv, wantV, { rtol: 3e-3, atol: 1e-3 }, 'dV at logits ±5000');
      assertClose(gp, wantP, { rtol: 3e-3, atol: 1e-3 }, 'dP at logits ±5000');
    });
  });

  it('softplus form: positives far ahead give L ≈ 0, negatives far ahead give L ≈ their margin', async () => {
    const e = await testEngine();
    // B = 2, K = 1, C = 1, τ = 0.01. Row 0: s = 50·1/τ = 5000 vs n = 1·40/τ = 4000 → L₀ = softplus(−1000) ≈ 0.
    // Row 1: s = 40·(−50)/τ = −200000 vs n = 4000 → L₁ = 204000 (exactly representable margins).
    const v = [1, 40];
    const P = [50, -50];
    const want = contrastiveForwardRef(v, P, { B: 2, K: 1, C: 1 }, 0.01);
    expect(want).toBeCloseTo((0 + 204000) / 2, 6);
    await e.scopeAsync(async () => {
      const fw = contrastiveForward(e, e.tensor(v, [2, 1]), e.tensor(P, [2, 1, 1]), 0.01);
      assertClose(await fw.loss.read(), [want], { rtol: 1e-6, atol: 0 }, 'L');
      const stats = await fw.stats.read();
      expect(stats[3]).toBe(0); // L₀: e^{−1000} underflows inside log1p, no NaN
      expect(stats[7]).toBeCloseTo(204000, 0);
      // A nearly solved batch: s = 21, n = 1 in both rows → L = log(1 + e^{−20}) ≈ 2.06e-9,
      // which log(1 + y) in fp32 would round to 0.
      const tiny = contrastiveForward(e, e.tensor([1, 1], [2, 1]), e.tensor([21, 21], [2, 1, 1]), 1);
      const exact = Math.log1p(Math.exp(-20));
      assertClose(await tiny.loss.read(), [exact], { rtol: 1e-5, atol: 0 }, 'L ≈ 2e-9');
    });
  });

  it('rejects bad shapes and temperatures', async () => {
    const e = await testEngine();
    e.scope(() => {
      expect(() => contrastiveLoss(e.zeros([2, 3]), e.zeros([3, 1, 3]), 0.1)).toThrow(/does not match/);
      expect(() => contrastiveLoss(e.zeros([2, 3]), e.zeros([2, 1, 3]), 0)).toThrow(/temperature/);
      expect(() => contrastiveLoss(e.zeros([2, 3]), e.zeros([2, 3]), 0.1)).toThrow(/\(B, K, C\)/);
    });
  });

  it('records on the tape: the loss reaches v.grad and P.grad, and frees everything', async () => {
    const e = await testEngine();
    const [B, K, C] = [3, 2, 6];
    const tau = 0.3;
    const r = rng(9);
    const vs = r.normals(B * C, 0.5);
    const Ps = r.normals(B * K * C, 0.5);
    const before = e.pool.getStats().liveBytes;
    const v = e.parameter(vs, [B, C], 'v');
    const P = e.parameter(Ps, [B, K, C], 'P');
    await e.scopeAsync(async () => {
      const L = contrastiveLoss(v, P, tau);
      assertClose(await L.read(), [contrastiveForwardRef(vs, Ps, { B, K, C }, tau)], TOL, 'L');
      e.backward(L);
    });
    const [wantV, wantP] = contrastiveBackwardRef(vs, Ps, { B, K, C }, tau, 1);
    assertClose(await v.grad!.read(), wantV, TOL, 'v.grad');
    assertClose(await P.grad!.read(), wantP, TOL, 'P.grad');
    v.dispose();
    P.dispose();
    expect(e.pool.getStats().liveBytes).toBe(before);
  });
});
