// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// Per batch b, head h and query i, over the keys j it may see (all, or j ≤ i when causal):
//   s_ij = scale · q_i·k_j,  P_ij = softmax_j(s_ij),  o_i = Σ_j P_ij v_j,  lse_i = log Σ_j exp(s_ij)
// Backward (materialising P row by row, which the GPU kernels never do):
//   dP_ij = dO_i·v_j,  dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'),
//   dQ_i = scale Σ_j dS_ij k_j,  dK_j = scale Σ_i dS_ij q_i,  dV_j = Σ_i P_ij dO_i
// Layout: q (B, Nq, H·D), k and v (B, Nk, H·D); head h owns columns h·D … h·D+D−1.

export interface AttentionDims {
  batch: number;
  nq: number;
  nk: number;
  heads: number;
  headDim: number;
  scale: number;
  causal: boolean;
}

const visible = (dims: AttentionDims, i: number, j: number) => !dims.causal || j <= i;

// P row of (b, h, i) over all Nk keys (0 where masked) and its log-sum-exp.
function probabilities(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  dims: AttentionDims,
  b: number,
  h: number,
  i: number,
) {
  const { nq, nk, heads, headDim: d, scale } = dims;
  const hd = heads * d;
  const qo = (b * nq + i) * hd + h * d;
  const s = new Float64Array(nk);
  let max = -Infinity;
  for (let j = 0; j < nk; j++) {
    if (!visible(dims, i, j)) continue;
    const ko = (b * nk + j) * hd + h * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
    s[j] = scale * dot;
    max = Math.max(max, s[j]);
  }
  let sum = 0;
  for (let j = 0; j < nk; j++) {
    s[j] = visible(dims, i, j) ? Math.exp(s[j] - max) : 0;
    sum += s[j];
  }
  for (let j = 0; j < nk; j++) s[j] /= sum;
  return { p: s, lse: max + Math.log(sum) };
}

// q: (B, Nq, H·D), k, v: (B, Nk, H·D) → o: (B, Nq, H·D), lse: (B, H, Nq)
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionDims,
): { o: Float64Array; lse: Float64Array } {
  const { batch, nq, nk, heads, headDim: d } = dims;
  const hd = heads * d;
  const o = new Float64Array(batch * nq * hd);
  const lse = new Float64Array(batch * heads * nq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nq; i++) {
        const { p, lse: l } = probabilities(q, k, dims, b, h, i);
        lse[(b * heads + h) * nq + i] = l;
        const oo = (b * nq + i) * hd + h * d;
        for (let j = 0; j < nk; j++) {
          const vo = (b * nk + j) * hd + h * d;
          for (let c = 0; c < d; c++) o[oo + c] += p[j] * v[vo + c];
        }
      }
    }
  }
  return { o, lse };
}

// q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D) → dQ like q, dK like k, dV like v
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dO: ArrayLike<number>,
  dims: AttentionDims,
): { dQ: Float64Array; dK: Float64Array; dV: Float64Array } {
  const { batch, nq, nk, heads, headDim: d, scale } = dims;
  const hd = heads * d;
  const dQ = new Float64Array(q.length);
  const dK = new Float64Array(k.length);
  const dV = new Float64Array(v.length);
  const dP = new Float64Array(nk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nq; i++) {
        const { p } = probabilities(q, k, dims, b, h, i);
        const qo = (b * nq + i) * hd + h * d;
        let rowDot = 0;
        for (let j = 0; j < nk; j++) {
          const vo = (b * nk + j) * hd + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += dO[qo + c] * v[vo + c];
          dP[j] = dot;
          rowDot += p[j] * dot;
        }
        for (let j = 0; j < nk; j++) {
          if (p[j] === 0) continue;
          const ko = (b * nk + j) * hd + h * d;
          const dS = p[j] * (dP[j] - rowDot);
          for (let c = 0; c < d; c++) {
            dQ[qo + c] += scale * dS * k[ko + c];
            dK[ko + c] += scale * dS * q[qo + c];
            dV[ko + c] += p[j] * dO[qo + c];
          }
        }
      }
    }
  }
  return { dQ, dK, dV };
}
