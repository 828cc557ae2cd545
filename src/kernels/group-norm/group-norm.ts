// GroupNorm (optionally fused with SiLU) as a differentiable op: forward on the GPU,
// backward recorded on the tape. μ and rstd per (batch, group) are saved for backward.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { frozenIfHalf } from './frozen-params.ts';
import type { GroupNormKernelOptions } from './group-norm-kernels.ts';
import { groupNormBackwardSplit, groupNormForwardSplit } from './group-norm-split.ts';

export type GroupNormOptions = GroupNormKernelOptions;

// x: (B, C, ...spatial); weight, bias: (C) → y: like x.
// PyTorch GroupNorm (biased variance); with { silu: true }, SiLU(GroupNorm(x)).
// x may be an fp16 activation (inference, see activationDtype; y is then fp16 too), and
// weight/bias frozen fp16 parameters.
export function groupNorm(
  x: Tensor,
  groups: number,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
  options: GroupNormOptions = {},
): Tensor {
  const e = x.engine;
  activationDtype('groupNorm', x);
  frozenIfHalf('groupNorm', weight, bias);
  const { y, mean, rstd } = groupNormForwardSplit(e, x, groups, weight, bias, eps, options);
  e.record('group_norm', [x, weight, bias], y, [x, weight, bias, mean, rstd], (dY) => {
    const g = groupNormBackwardSplit(e, x, groups, weight, bias, mean, rstd, dY, {
      ...options,
      need: { x: x.requiresGrad, weight: weight.requiresGrad, bias: bias.requiresGrad },
    });
    return [g.dX, g.dW, g.dB];
  });
  // The tape (if it recorded) holds its own reference to the statistics.
  mean.dispose();
  rstd.dispose();
  return y;
}
