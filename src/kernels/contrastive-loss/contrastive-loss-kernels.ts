// WGSL forward and backward of the nearest-neighbour contrastive loss (paper, Eq. 2), and
// their dispatch (no autograd here: see contrastive-loss.ts).
//
// Forward, two passes: (1) the logits matrix S (B, K + B) — row b holds its K positive
// logits v_b·P_bk/τ, then v_b·v_j/τ for every j (the diagonal j = b is not a negative and
// is ignored); (2) one workgroup turns each row into two log-sum-exps (positives, negatives),
// L_b = softplus(LSE_neg − LSE_pos) and the batch mean. Both log-sum-exps subtract the row's
// maximum and softplus is evaluated as max(x, 0) + log1p(e^{−|x|}), so no exp sees a positive
// argument: logits of ±5000 (τ = 0.01, |v·T| = 50) stay finite. The same row statistics give
// the backward without cancellation:
//   ∂L/∂s_bk = −p_pos_bk·σ(x_b)/B,   ∂L/∂n_bj = e^{n_bj − LSE_neg(b)}·σ(x_b)/B,
//   x_b = LSE_neg(b) − LSE_pos(b)
// (p_all − p_pos = p_pos·(e^{−L_b} − 1) and 1 − e^{−L_b} = σ(x_b)). Backward: (3) those
// weights, ×1/τ, into W (B, K + B); (4) dV = W_pos·P + (W_neg + W_negᵀ)·v; (5) dP = W_pos ⊗ v.
//
// No tiled variant: the whole loss is B·(K + B)·C multiply-adds (B ≤ 64, K ≤ 16, C ≤ 1024),
// a rounding error beside one UNet layer; one invocation per dot product is already
// fully parallel at those sizes.
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';

const WG = 64;
/** Floats of row statistics per image: LSE_pos, LSE_neg, σ(x), L_b. */
const STATS = 4;

// Storage bindings in order (arrays of f32; `writes` read_write), then the Params uniform.
const bindings = (reads: string[], writes: string[]) =>
  [...reads.map((n) => [n, 'read']), ...writes.map((n) => [n, 'read_write'])]
    .map(([n, access], i) => `@group(0) @binding(${i}) var<storage, ${access}> ${n}: array<f32>;`)
    .concat(`@group(0) @binding(${reads.length + writes.length}) var<uniform> p: Params;`)
    .join('\n');

// Entry point of the one-invocation-per-element kernels: element t (bounds left to each).
const FLAT_MAIN = /* wgsl */ `${WGSL_FLAT_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let t = flatIndex(wid, nwg, lid, ${WG}u);`;

// v: (B, C), P: (B, K, C) → S: (B, K + B)
const logitsKernel = defineKernel({
  name: 'contrastive_logits',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { B: u32, K: u32, C: u32, invTau: f32 }
${bindings(['v', 'P'], ['S'])}
${FLAT_MAIN}
  let N = p.K + p.B;
  if (t >= p.B * N) { return; }
  let b = t / N;
  let j = t - b * N;
  var acc = 0.0;
  if (j < p.K) {
    let o = (b * p.K + j) * p.C;
    for (var c = 0u; c < p.C; c++) { acc += v[b * p.C + c] * P[o + c]; }
  } else if (j - p.K != b) {
    let o = (j - p.K) * p.C;
    for (var c = 0u; c < p.C; c++) { acc += v[b * p.C + c] * v[o + c]; }
  }
  S[t] = acc * p.invTau;
}`,
});

const STABLE_MATH = /* wgsl */ `
// log(1 + y) for y ∈ [0, 1]: the series where 1 + y would round y away in f32.
fn log1pSmall(y: f32) -> f32 {
  if (y < 0.05) { return y * (1.0 - y * (0.5 - y * (1.0 / 3.0 - y * (0.25 - y * 0.2)))); }
  return log(1.0 + y);
}
fn softplus(x: f32) -> f32 { return max(x, 0.0) + log1pSmall(exp(-abs(x))); }
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}`;

// S: (B, K + B) → stats: (B, 4) = [LSE_pos, LSE_neg, σ(x), L_b], L: (1) = mean_b L_b
const lossKernel = defineKernel({
  name: 'contrastive_loss_forward',
  storage: ['read', 'write', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { B: u32, K: u32 }
${bindings(['S'], ['stats', 'L'])}
${STABLE_MATH}
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let N = p.K + p.B;
  var acc = 0.0;
  for (var b = lid; b < p.B; b += ${WG}u) {
    let row = b * N;
    var mp = S[row];
    for (var k = 1u; k < p.K; k++) { mp = max(mp, S[row + k]); }
    var sp = 0.0;
    for (var k = 0u; k < p.K; k++) { sp += exp(S[row + k] - mp); }
    let lsePos = mp + log(sp);
    var lseNeg = 0.0;
    var sig = 0.0;
    var lb = 0.0;
    if (p.B > 1u) {
      // A batch of one has no negatives: L_b = 0 and no gradient.
      var mn = S[row + p.K + select(0u, 1u, b == 0u)];
      for (var j = 0u; j < p.B; j++) { if (j != b) { mn = max(mn, S[row + p.K + j]); } }
      var sn = 0.0;
      for (var j = 0u; j < p.B; j++) { if (j != b) { sn += exp(S[row + p.K + j] - mn); } }
      lseNeg = mn + log(sn);
      let x = lseNeg - lsePos;
      lb = softplus(x);
      sig = sigmoid(x);
    }
    stats[b * ${STATS}u] = lsePos;
    stats[b * ${STATS}u + 1u] = lseNeg;
    stats[b * ${STATS}u + 2u] = sig;
    stats[b * ${STATS}u + 3u] = lb;
    acc += lb;
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { L[0] = part[0] / f32(p.B); }
}`,
});

// S: (B, K + B), stats: (B, 4), dL: (1) → W: (B, K + B) = ∂L/∂(v·P, v·v) (the 1/τ included)
const weightsKernel = defineKernel({
  name: 'contrastive_backward_weights',
  storage: ['read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { B: u32, K: u32, scale: f32 }
${bindings(['S', 'stats', 'dL'], ['W'])}
${FLAT_MAIN}
  let N = p.K + p.B;
  if (t >= p.B * N) { return; }
  let b = t / N;
  let j = t - b * N;
  let g = dL[0] * p.scale * stats[b * ${STATS}u + 2u];
  if (j < p.K) {
    W[t] = -exp(S[t] - stats[b * ${STATS}u]) * g;
  } else if (j - p.K == b) {
    W[t] = 0.0;
  } else {
    W[t] = exp(S[t] - stats[b * ${STATS}u + 1u]) * g;
  }
}`,
});

// v: (B, C), P: (B, K, C), W: (B, K + B) → dV: (B, C)
const backwardVKernel = defineKernel({
  name: 'contrastive_backward_v',
  storage: ['read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { B: u32, K: u32, C: u32 }
${bindings(['v', 'P', 'W'], ['dV'])}
${FLAT_MAIN}
  if (t >= p.B * p.C) { return; }
  let b = t / p.C;
  let c = t - b * p.C;
  let N = p.K + p.B;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc += W[b * N + k] * P[(b * p.K + k) * p.C + c]; }
  // v_b against v_j in row b, and v_b as row j's negative (the diagonal weights are 0).
  for (var j = 0u; j < p.B; j++) { acc += (W[b * N + p.K + j] + W[j * N + p.K + b]) * v[j * p.C + c]; }
  dV[t] = acc;
}`,
});

// v: (B, C), W: (B, K + B) → dP: (B, K, C)
const backwardPKernel = defineKernel({
  name: 'contrastive_backward_p',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { B: u32, K: u32, C: u32 }
${bindings(['v', 'W'], ['dP'])}
${FLAT_MAIN}
  if (t >= p.B * p.K * p.C) { return; }
  let bk = t / p.C;
  let c = t - bk * p.C;
  let b = bk / p.K;
  let k = bk - b * p.K;
  dP[t] = W[b * (p.K + p.B) + k] * v[b * p.C + c];
}`,
});

/** Checks v: (B, C), P: (B, K, C), τ > 0; returns B, K, C. */
export function contrastiveShapes(v: Tensor, P: Tensor, tau: number): { B: number; K: number; C: number } {
  if (v.dtype !== 'f32' || P.dtype !== 'f32') throw new Error(`contrastiveLoss: f32 only, got ${v}, ${P}`);
  if (v.rank !== 2 || P.rank !== 3)
    throw new Error(`contrastiveLoss: v must be (B, C) and P (B, K, C), got ${v}, ${P}`);
  const [B, C] = v.shape;
  const [PB, K, PC] = P.shape;
  if (PB !== B || PC !== C) throw new Error(`contrastiveLoss: P ${P} does not match v ${v}`);
  if (B < 1 || K < 1 || C < 1) throw new Error(`contrastiveLoss: empty batch, positives or channels (${v}, ${P})`);
  if (!(tau > 0) || !Number.isFinite(tau)) throw new Error(`contrastiveLoss: temperature must be > 0, got ${tau}`);
  return { B, K, C };
}

export interface ContrastiveForward {
  /** L: (1) */
  loss: Tensor;
  /** S: (B, K + B), the logits (for backward). */
  logits: Tensor;
  /** (B, 4): LSE_pos, LSE_neg, σ(LSE_neg − LSE_pos), L_b per image (for backward). */
  stats: Tensor;
}

// v: (B, C), P: (B, K, C) → L: (1), S: (B, K + B), stats: (B, 4)
export function contrastiveForward(engine: Engine, v: Tensor, P: Tensor, tau: number): ContrastiveForward {
  const { B, K, C } = contrastiveShapes(v, P, tau);
  const logits = engine.empty([B, K + B]);
  engine.dispatch(logitsKernel, [v, P, logits], grid1d(B * (K + B), WG), [u32(B), u32(K), u32(C), f32(1 / tau)]);
  const stats = engine.empty([B, STATS]);
  const loss = engine.empty([1]);
  engine.dispatch(lossKernel, [logits, stats, loss], [1, 1, 1], [u32(B), u32(K)]);
  return { loss, logits, stats };
}

// v: (B, C), P: (B, K, C), logits: (B, K + B), stats: (B, 4), dL: (1) → [dV: (B, C), dP: (B, K, C)]
export function contrastiveBackward(
  engine: Engine,
  v: Tensor,
  P: Tensor,
  logits: Tensor,
  stats: Tensor,
  dL: Tensor,
  tau: number,
  needs: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  const { B, K, C } = contrastiveShapes(v, P, tau);
  const W = engine.empty([B, K + B]);
  engine.dispatch(weightsKernel, [logits, stats, dL, W], grid1d(B * (K + B), WG), [u32(B), u32(K), f32(1 / (B * tau))]);
  let dV: Tensor | null = null;
  let dP: Tensor | null = null;
  if (needs[0]) {
    dV = engine.empty([B, C]);
    engine.dispatch(backwardVKernel, [v, P, W, dV], grid1d(B * C, WG), [u32(B), u32(K), u32(C)]);
  }
  if (needs[1]) {
    dP = engine.empty([B, K, C]);
    engine.dispatch(backwardPKernel, [v, W, dP], grid1d(B * K * C, WG), [u32(B), u32(K), u32(C)]);
  }
  W.dispose();
  return [dV, dP];
}

export const contrastiveLossKernels = [logitsKernel, lossKernel, weightsKernel, backwardVKernel, backwardPKernel];
