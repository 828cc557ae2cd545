// Batched matrix multiply as a differentiable op: forward on the GPU, backward recorded on the tape.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { productDtype, type MatmulOptions } from './matmul-kernels.ts';
import { matmulBackwardSplit, matmulForwardSplit } from './matmul-split.ts';

export type { MatmulOptions } from './matmul-kernels.ts';

// a: (…, M, K) or (…, K, M) with transA; b: (…, K, N) or (…, N, K) with transB → (…, M, N).
// The batch dimensions of a and b are equal, or one of them is 2-D and shared by the whole
// batch (its gradient then sums over the batch). f32; fp16 activations at inference (both
// operands f16, or opts.out 'f16' with an f32 weight operand: the result is f16); f32
// activations with one frozen fp16 operand (the result is f32).
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const e = a.engine;
  const o: MatmulOptions = { transA: !!opts.transA, transB: !!opts.transB, out: opts.out };
  // An fp16 result means the fp16 operands are activations: inference only (activationDtype).
  if (productDtype([a, b], o.out) === 'f16') {
    const half = [a, b].filter((t) => t.dtype === 'f16');
    if (half.length === 0) throw new Error(`matmul: an fp16 result needs an fp16 activation operand, got ${a}, ${b}`);
    activationDtype('matmul', ...half);
  }
  const y = matmulForwardSplit(e, a, b, o);
  // dA needs only b and dB only a: a frozen operand's partner need not stay alive.
  const saved = [...(b.requiresGrad ? [a] : []), ...(a.requiresGrad ? [b] : [])];
  e.record('matmul', [a, b], y, saved, (dY) => matmulBackwardSplit(e, a, b, dY, o, [a.requiresGrad, b.requiresGrad]));
  return y;
}
