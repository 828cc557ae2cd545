// Multi-head attention as a differentiable op, memory-efficient in both directions: the
// tape keeps q, k, v, the output and the per-row log-sum-exp (B·H·Nq floats), never scores.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { attentionBackward, attentionForward, type AttentionOptions } from './attention-kernels.ts';

export type { AttentionOptions } from './attention-kernels.ts';

// q: (B, Nq, H·D), k, v: (B, Nk, H·D) → (B, Nq, H·D) in their dtype: f32, or fp16
// activations at inference where the adapter has shader-f16 (activationDtype; the kernels
// store f16 and keep the scores, softmax statistics and sums in f32).
export function attention(q: Tensor, k: Tensor, v: Tensor, heads: number, options: AttentionOptions = {}): Tensor {
  activationDtype('attention', q, k, v);
  const e = q.engine;
  const { o, lse } = attentionForward(e, q, k, v, heads, options);
  e.record('attention', [q, k, v], o, [q, k, v, o, lse], (dO) => {
    const wanted = { q: q.requiresGrad, k: k.requiresGrad, v: v.requiresGrad };
    const g = attentionBackward(e, q, k, v, o, lse, dO, heads, options, wanted);
    return [g.dQ, g.dK, g.dV];
  });
  // The tape (if it recorded) retains lse's storage; otherwise this frees it now.
  lse.dispose();
  return o;
}
