// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// Cosine similarity as torch.nn.functional.cosine_similarity (each norm clamped to eps):
//   S_ij = a_i·b_j / (n̂a_i · n̂b_j),  n̂x = max(‖x‖, eps)
//   ∂S_ij/∂a_i = b_j/(n̂a_i n̂b_j) − S_ij·a_i/n̂a_i²   (second term only where ‖a_i‖ > eps; below,
//   the clamped norm is a constant), and symmetrically for b_j.
// Top-k: per row, the k largest scores, ties to the lower index, excluded columns skipped.

export const COSINE_EPS = 1e-8;

const norms = (x: ArrayLike<number>, rows: number, C: number): Float64Array => {
  const n = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c] * x[r * C + c];
    n[r] = Math.sqrt(s);
  }
  return n;
};

// a: (M, C), b: (N, C) → S: (M, N)
export function cosineSimilarityForwardRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  M: number,
  N: number,
  C: number,
): Float64Array {
  const na = norms(a, M, C);
  const nb = norms(b, N, C);
  const S = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += a[i * C + c] * b[j * C + c];
      S[i * N + j] = dot / (Math.max(na[i], COSINE_EPS) * Math.max(nb[j], COSINE_EPS));
    }
  }
  return S;
}

// a: (M, C), b: (N, C), dS: (M, N) → [dA: (M, C), dB: (N, C)]
export function cosineSimilarityBackwardRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dS: ArrayLike<number>,
  M: number,
  N: number,
  C: number,
): [Float64Array, Float64Array] {
  const na = norms(a, M, C);
  const nb = norms(b, N, C);
  const S = cosineSimilarityForwardRef(a, b, M, N, C);
  const dA = new Float64Array(M * C);
  const dB = new Float64Array(N * C);
  for (let i = 0; i < M; i++) {
    const ha = Math.max(na[i], COSINE_EPS);
    for (let j = 0; j < N; j++) {
      const hb = Math.max(nb[j], COSINE_EPS);
      const g = dS[i * N + j];
      const s = S[i * N + j];
      for (let c = 0; c < C; c++) {
        const ac = a[i * C + c];
        const bc = b[j * C + c];
        dA[i * C + c] += g * (bc / (ha * hb) - (na[i] > COSINE_EPS ? (s * ac) / (ha * ha) : 0));
        dB[j * C + c] += g * (ac / (ha * hb) - (nb[j] > COSINE_EPS ? (s * bc) / (hb * hb) : 0));
      }
    }
  }
  return [dA, dB];
}

// scores: (M, N) → values, indices: (M, k), each row best first
export function topKRef(
  scores: ArrayLike<number>,
  M: number,
  N: number,
  k: number,
  exclude: Iterable<number> = [],
): { values: Float64Array; indices: Int32Array } {
  const excluded = new Set(exclude);
  const values = new Float64Array(M * k);
  const indices = new Int32Array(M * k);
  for (let i = 0; i < M; i++) {
    const cols: number[] = [];
    for (let j = 0; j < N; j++) if (!excluded.has(j)) cols.push(j);
    cols.sort((x, y) => scores[i * N + y] - scores[i * N + x] || x - y);
    if (cols.length < k) throw new Error(`topKRef: only ${cols.length} columns left for k = ${k}`);
    for (let q = 0; q < k; q++) {
      values[i * k + q] = scores[i * N + cols[q]];
      indices[i * k + q] = cols[q];
    }
  }
  return { values, indices };
}
