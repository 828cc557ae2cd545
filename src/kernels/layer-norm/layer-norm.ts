// LayerNorm over the last dimension as a differentiable op: forward on the GPU, backward
// recorded on the tape. μ and rstd per row are saved for backward.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { frozenIfHalf } from '../group-norm/frozen-params.ts';
import type { LayerNormKernelOptions } from './layer-norm-kernels.ts';
import { layerNormBackwardSplit, layerNormForwardSplit } from './layer-norm-split.ts';

export type LayerNormOptions = LayerNormKernelOptions;

// x: (…, C); weight, bias: (C) → y: like x. PyTorch LayerNorm(C) (biased variance).
// x may be an fp16 activation (inference, see activationDtype; y is then fp16 too), and
// weight/bias frozen fp16 parameters.
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5, options: LayerNormOptions = {}): Tensor {
  const e = x.engine;
  activationDtype('layerNorm', x);
  frozenIfHalf('layerNorm', weight, bias);
  const { y, mean, rstd } = layerNormForwardSplit(e, x, weight, bias, eps, options);
  e.record('layer_norm', [x, weight, bias], y, [x, weight, mean, rstd], (dY) => {
    const g = layerNormBackwardSplit(e, x, weight, mean, rstd, dY, {
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
