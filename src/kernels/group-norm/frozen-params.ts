// Norm parameters (weight, bias) may be frozen fp16 weights, which the kernels read through
// weightVariant. A trainable one cannot be fp16: its gradient is computed in f32 and would
// need an fp32 tensor to land in, so the norms refuse it up front.
import type { Tensor } from '../../engine/tensor.ts';

/** Throws when one of `params` is fp16 and requires a gradient. */
export function frozenIfHalf(op: string, ...params: Tensor[]): void {
  for (const t of params) {
    if (t.dtype === 'f16' && t.requiresGrad) throw new Error(`${op}: fp16 parameter ${t} must be frozen (no gradient)`);
  }
}
