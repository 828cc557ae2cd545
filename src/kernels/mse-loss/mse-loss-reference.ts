// CPU reference (plain loops, float64) for the diffusion loss ‖ε − ε̂‖² (paper, Eq. 1):
// L = s·Σ (pred − target)², s = 1/n for 'mean', 1 for 'sum';
// ∂L/∂pred = 2s·(pred − target)·dL, ∂L/∂target = −∂L/∂pred.
import type { MseReduction } from './mse-loss-kernels.ts';

const scaleOf = (n: number, reduction: MseReduction) => (reduction === 'mean' ? 1 / n : 1);

// pred, target: (n) → L
export function mseForwardRef(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  reduction: MseReduction = 'mean',
): number {
  let sum = 0;
  for (let i = 0; i < pred.length; i++) sum += (pred[i] - target[i]) ** 2;
  return sum * scaleOf(pred.length, reduction);
}

// pred, target: (n), dL → [dPred: (n), dTarget: (n)]
export function mseBackwardRef(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  dL: number,
  reduction: MseReduction = 'mean',
): [Float64Array, Float64Array] {
  const s = 2 * scaleOf(pred.length, reduction) * dL;
  const dPred = Float64Array.from(pred, (p, i) => s * (p - target[i]));
  return [dPred, dPred.map((g) => -g)];
}
