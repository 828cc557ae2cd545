// CPU reference (plain loops, float64): the ground truth the WGSL kernels are tested against.
// y[p, :] = table[ids[p], :];  dTable[v, :] = Σ_{p : ids[p] = v} dY[p, :]

// ids: (P), table: (V, C) → y: (P, C)
export function embeddingForwardRef(ids: ArrayLike<number>, table: ArrayLike<number>, C: number): Float64Array {
  const y = new Float64Array(ids.length * C);
  for (let p = 0; p < ids.length; p++) {
    for (let c = 0; c < C; c++) y[p * C + c] = table[ids[p] * C + c];
  }
  return y;
}

// ids: (P), dY: (P, C) → dTable: (V, C)
export function embeddingBackwardRef(
  ids: ArrayLike<number>,
  dY: ArrayLike<number>,
  V: number,
  C: number,
): Float64Array {
  const dTable = new Float64Array(V * C);
  for (let p = 0; p < ids.length; p++) {
    for (let c = 0; c < C; c++) dTable[ids[p] * C + c] += dY[p * C + c];
  }
  return dTable;
}
