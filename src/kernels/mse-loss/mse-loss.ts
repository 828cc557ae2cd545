// MSE loss as a differentiable op: the denoising objective ‖ε − ε̂_θ(x_t, t, c)‖² of the
// paper (Eq. 1), 'mean' over all elements by default. Returns a tensor of shape [1].
import type { Tensor } from '../../engine/tensor.ts';
import { mseLossBackward, mseLossForward, type MseReduction } from './mse-loss-kernels.ts';

export function mseLoss(pred: Tensor, target: Tensor, reduction: MseReduction = 'mean'): Tensor {
  const e = pred.engine;
  const loss = mseLossForward(e, pred, target, reduction);
  e.record('mseLoss', [pred, target], loss, [pred, target], (dL) =>
    mseLossBackward(e, pred, target, dL, reduction, [pred.requiresGrad, target.requiresGrad]),
  );
  return loss;
}
