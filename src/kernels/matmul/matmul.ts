// Batched matrix multiply as a differentiable op: forward on the GPU, backward recorded on the tape.
import type { Tensor } from '../../engine/tensor.ts';
import type { MatmulOptions } from './matmul-kernels.ts';
import { matmulBackwardSplit, matmulForwardSplit } from './matmul-split.ts';

export type { MatmulOptions } from './matmul-kernels.ts';

// a: (…, M, K) or (…, K, M) with transA; b: (…, K, N) or (…, N, K) with transB → (…, M, N).
// The batch dimensions of a and b are equal, or one of them is 2-D and shared by the whole
// batch (its gradient then sums over the batch). f32, or f16 storage on shader-f16 adapters.
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const e = a.engine;
  const o: MatmulOptions = { transA: !!opts.transA, transB: !!opts.transB };
  const y = matmulForwardSplit(e, a, b, o);
  // dA needs only b and dB only a: a frozen operand's partner need not stay alive.
  const saved = [...(b.requiresGrad ? [a] : []), ...(a.requiresGrad ? [b] : [])];
  e.record('matmul', [a, b], y, saved, (dY) => matmulBackwardSplit(e, a, b, dY, o, [a.requiresGrad, b.requiresGrad]));
  return y;
}
