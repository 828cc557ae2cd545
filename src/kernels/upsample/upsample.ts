// Nearest-neighbour 2× upsampling (the UNet/VAE upsampler) as a differentiable op.
import type { Tensor } from '../../engine/tensor.ts';
import { upsampleNearest2xBackward, upsampleNearest2xForward } from './upsample-kernels.ts';

// x: (B, C, H, W) → (B, C, 2H, 2W)
export function upsampleNearest2x(x: Tensor): Tensor {
  const e = x.engine;
  const y = upsampleNearest2xForward(e, x);
  e.record('upsampleNearest2x', [x], y, [], (dY) => [upsampleNearest2xBackward(e, dY)]);
  return y;
}
