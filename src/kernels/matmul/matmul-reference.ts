// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// Y[z] = op(A[z])·op(B[z]) where op transposes when asked; an operand given as a single
// matrix (rank 2) is shared by every batch entry, and its gradient sums over the batch.
//   dop(A) = dY·op(B)ᵀ,  dop(B) = op(A)ᵀ·dY   (then transposed back to the stored layout)

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
}

interface RefDims {
  batch: number;
  M: number;
  N: number;
  K: number;
  outShape: number[];
  sharedA: boolean;
  sharedB: boolean;
}

function refDims(aShape: readonly number[], bShape: readonly number[], o: MatmulRefOptions): RefDims {
  const ra = aShape.length;
  const rb = bShape.length;
  const [a0, a1] = aShape.slice(ra - 2);
  const [b0, b1] = bShape.slice(rb - 2);
  const M = o.transA ? a1 : a0;
  const K = o.transA ? a0 : a1;
  const N = o.transB ? b0 : b1;
  if ((o.transB ? b1 : b0) !== K) throw new Error('matmulRef: inner dimensions differ');
  const batchShape = ra > 2 ? aShape.slice(0, ra - 2) : bShape.slice(0, rb - 2);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  return { batch, M, N, K, outShape: [...batchShape, M, N], sharedA: ra === 2, sharedB: rb === 2 };
}

// A element (m, k) of op(A) for batch z, as an index into the stored array.
const idxA = (d: RefDims, o: MatmulRefOptions, z: number, m: number, k: number) =>
  (d.sharedA ? 0 : z * d.M * d.K) + (o.transA ? k * d.M + m : m * d.K + k);
const idxB = (d: RefDims, o: MatmulRefOptions, z: number, k: number, n: number) =>
  (d.sharedB ? 0 : z * d.K * d.N) + (o.transB ? n * d.K + k : k * d.N + n);

export function matmulShapeRef(
  aShape: readonly number[],
  bShape: readonly number[],
  o: MatmulRefOptions = {},
): number[] {
  return refDims(aShape, bShape, o).outShape;
}

// a: (…, M, K) or (…, K, M) with transA; b: (…, K, N) or (…, N, K) with transB → y: (…, M, N)
export function matmulForwardRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  o: MatmulRefOptions = {},
  bias?: ArrayLike<number>,
): Float64Array {
  const d = refDims(aShape, bShape, o);
  const y = new Float64Array(d.batch * d.M * d.N);
  for (let z = 0; z < d.batch; z++) {
    for (let m = 0; m < d.M; m++) {
      for (let n = 0; n < d.N; n++) {
        let s = bias ? bias[n] : 0;
        for (let k = 0; k < d.K; k++) s += a[idxA(d, o, z, m, k)] * b[idxB(d, o, z, k, n)];
        y[(z * d.M + m) * d.N + n] = s;
      }
    }
  }
  return y;
}

// Same layouts as the forward; dY: (…, M, N) → [dA shaped like a, dB shaped like b]
export function matmulBackwardRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  dY: ArrayLike<number>,
  o: MatmulRefOptions = {},
): [Float64Array, Float64Array] {
  const d = refDims(aShape, bShape, o);
  const dA = new Float64Array(a.length);
  const dB = new Float64Array(b.length);
  for (let z = 0; z < d.batch; z++) {
    for (let m = 0; m < d.M; m++) {
      for (let n = 0; n < d.N; n++) {
        const g = dY[(z * d.M + m) * d.N + n];
        for (let k = 0; k < d.K; k++) {
          const ia = idxA(d, o, z, m, k);
          const ib = idxB(d, o, z, k, n);
          // Accumulating (+=) is what sums a shared operand's gradient over the batch.
          dA[ia] += g * b[ib];
          dB[ib] += g * a[ia];
        }
      }
    }
  }
  return [dA, dB];
}
