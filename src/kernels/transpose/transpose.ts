// Axis permutation (e.g. (B, C, H, W) ↔ (B, H·W, C) around transformer blocks) as a
// differentiable op; the backward applies the inverse permutation to dY.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { transposeBackward, transposeForward } from './transpose-kernels.ts';

// x: shape → perm.map(d => shape[d]): output axis d is input axis perm[d]; f32, or fp16
// activations at inference (activationDtype), moved exactly.
export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  activationDtype('transpose', x);
  const e = x.engine;
  const y = transposeForward(e, x, perm);
  const p = [...perm];
  e.record('transpose', [x], y, [], (dY) => [transposeBackward(e, dY, p)]);
  return y;
}
