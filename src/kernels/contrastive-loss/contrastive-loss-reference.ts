// CPU reference (plain loops, float64) of the nearest-neighbour contrastive loss (paper, Eq. 2):
//
//   s_bk = v_b·P_bk / τ                (positives: the k vocabulary embeddings nearest v_b)
//   n_bj = v_b·v_j / τ,  j ≠ b          (negatives: the other images' embeddings in the batch)
//   L_b  = −log( Σ_k e^{s_bk} / (Σ_k e^{s_bk} + Σ_{j≠b} e^{n_bj}) ) = LSE_all(b) − LSE_pos(b)
//   L    = (1/B) Σ_b L_b
//
// Gradients, with p_all = softmax over row b's positives and negatives together and
// p_pos = softmax over its positives alone:
//   ∂L/∂s_bk = (p_all_bk − p_pos_bk)/B,   ∂L/∂n_bj = p_all_bj/B
//   ∂L/∂v_b  = Σ_k ∂L/∂s_bk·P_bk/τ + Σ_{j≠b} (∂L/∂n_bj + ∂L/∂n_jb)·v_j/τ   (v_b is also a
//              negative in every other row j)
//   ∂L/∂P_bk = ∂L/∂s_bk·v_b/τ
// The log-sum-exps subtract each row's maximum, so logits of ±5000 (τ = 0.01, |v·T| = 50) are
// fine; a naive exp overflows at ~709 in float64 (~88 in float32).

export interface ContrastiveShape {
  /** Images in the batch. */
  B: number;
  /** Positives per image. */
  K: number;
  /** Embedding size. */
  C: number;
}

const dot = (x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number, C: number) => {
  let s = 0;
  for (let c = 0; c < C; c++) s += x[xo + c] * y[yo + c];
  return s;
};

/** Row b's logits: K positives then B − 1 negatives (j ≠ b, in order). */
function rowLogits(v: ArrayLike<number>, P: ArrayLike<number>, s: ContrastiveShape, tau: number, b: number) {
  const { B, K, C } = s;
  const pos = Array.from({ length: K }, (_, k) => dot(v, b * C, P, (b * K + k) * C, C) / tau);
  const neg: number[] = [];
  for (let j = 0; j < B; j++) if (j !== b) neg.push(dot(v, b * C, v, j * C, C) / tau);
  return { pos, neg };
}

const logSumExp = (xs: readonly number[]): number => {
  if (xs.length === 0) return -Infinity;
  const m = Math.max(...xs);
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
};

// v: (B, C), P: (B, K, C) → L
export function contrastiveForwardRef(
  v: ArrayLike<number>,
  P: ArrayLike<number>,
  s: ContrastiveShape,
  tau: number,
): number {
  let total = 0;
  for (let b = 0; b < s.B; b++) {
    const { pos, neg } = rowLogits(v, P, s, tau, b);
    total += logSumExp([...pos, ...neg]) - logSumExp(pos);
  }
  return total / s.B;
}

// v: (B, C), P: (B, K, C), dL → [dV: (B, C), dP: (B, K, C)]
export function contrastiveBackwardRef(
  v: ArrayLike<number>,
  P: ArrayLike<number>,
  s: ContrastiveShape,
  tau: number,
  dL: number,
): [Float64Array, Float64Array] {
  const { B, K, C } = s;
  const dV = new Float64Array(B * C);
  const dP = new Float64Array(B * K * C);
  for (let b = 0; b < B; b++) {
    const { pos, neg } = rowLogits(v, P, s, tau, b);
    const lseAll = logSumExp([...pos, ...neg]);
    const lsePos = logSumExp(pos);
    const g = dL / (B * tau);
    for (let k = 0; k < K; k++) {
      const w = g * (Math.exp(pos[k] - lseAll) - Math.exp(pos[k] - lsePos));
      for (let c = 0; c < C; c++) {
        dV[b * C + c] += w * P[(b * K + k) * C + c];
        dP[(b * K + k) * C + c] += w * v[b * C + c];
      }
    }
    let n = 0;
    for (let j = 0; j < B; j++) {
      if (j === b) continue;
      const w = g * Math.exp(neg[n++] - lseAll);
      // n_bj = v_b·v_j/τ: both ends get a gradient.
      for (let c = 0; c < C; c++) {
        dV[b * C + c] += w * v[j * C + c];
        dV[j * C + c] += w * v[b * C + c];
      }
    }
  }
  return [dV, dP];
}
