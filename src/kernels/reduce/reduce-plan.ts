// Shape logic of reductions. Any set of reduced axes becomes a short list of steps of
// one form — (outer, r, inner) → (outer, inner), summing the middle axis — by dropping
// size-1 axes, merging neighbours of the same kind, and folding the innermost reduced
// group first: (B,C,H,W) → (C) is (B·C, H·W, 1) → (B·C), then (1, B, C) → (C).

export interface ReduceStep {
  outer: number;
  r: number;
  inner: number;
}

/** Axes as sorted, distinct, non-negative indices; undefined means all of them. */
export function normalizeAxes(rank: number, axes?: readonly number[]): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const out = axes.map((a) => {
    const ax = a < 0 ? a + rank : a;
    if (!Number.isInteger(ax) || ax < 0 || ax >= rank) throw new Error(`axis ${a} out of range for rank ${rank}`);
    return ax;
  });
  if (new Set(out).size !== out.length) throw new Error(`repeated axis in [${axes.join(',')}]`);
  return out.sort((a, b) => a - b);
}

/** Shape after reducing `axes` (normalised): kept as 1s with keepDims, else removed. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/** Axes of `from` to sum so that the result has `to`'s elements ( `to` broadcasts to `from`). */
export function axesReducedTo(from: readonly number[], to: readonly number[]): number[] {
  const offset = from.length - to.length;
  const axes: number[] = [];
  from.forEach((d, i) => {
    const t = i < offset ? 1 : to[i - offset];
    if (t !== d) {
      if (t !== 1) throw new Error(`[${to.join(',')}] does not broadcast to [${from.join(',')}]`);
      axes.push(i);
    }
  });
  return axes;
}

/** The steps that sum `axes` (normalised) of `shape`, innermost reduced group first. */
export function planReduction(shape: readonly number[], axes: readonly number[]): ReduceStep[] {
  const groups: { size: number; reduced: boolean }[] = [];
  shape.forEach((size, i) => {
    if (size === 1) return;
    const reduced = axes.includes(i);
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced) last.size *= size;
    else groups.push({ size, reduced });
  });
  const steps: ReduceStep[] = [];
  for (let g = groups.length - 1; g >= 0; g--) {
    if (!groups[g].reduced) continue;
    const product = (from: number, to: number) => groups.slice(from, to).reduce((a, x) => a * x.size, 1);
    steps.push({ outer: product(0, g), r: groups[g].size, inner: product(g + 1, groups.length) });
    groups.splice(g, 1);
  }
  return steps;
}
