// LoRA offsets for linear layers, PEFT convention (what diffusers saves):
//   W' = W + scale · B·A,   A = lora_A.weight (r, in),   B = lora_B.weight (out, r)
// so y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ — computed without forming ΔW, which is cheaper for
// small r and keeps A and B as the differentiable parameters.
import type { Params } from './params.ts';
import type { TensorOps } from './tensor-ops.ts';

/** A: (r, in), B: (out, r) — or per sample (Bt, r, in), (Bt, out, r) while pre-training. */
export interface LoraPair<T> {
  A: T;
  B: T;
}

export interface LoraSet<T> {
  /** Module path (e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q") → A, B. */
  readonly layers: ReadonlyMap<string, LoraPair<T>>;
  /** lora_alpha / rank. */
  readonly scale: number;
}

/** The four attention projections the paper adapts in every attn1 and attn2. */
export const LORA_TARGETS = ['to_q', 'to_k', 'to_v', 'to_out.0'] as const;

/** y = x·Wᵀ (+ b) (+ scale·(x·Aᵀ)·Bᵀ when `lora` has this module). */
export function loraLinear<T>(
  ops: TensorOps<T>,
  x: T,
  p: Params<T>,
  module: string,
  shape: readonly [number, number],
  bias: boolean,
  lora: LoraSet<T> | null,
): T {
  const m = p.sub(module);
  let y = ops.linear(x, m.get('weight', shape), bias ? m.get('bias', [shape[0]]) : null);
  const pair = lora?.layers.get(m.prefix);
  if (pair && lora) {
    let up: T;
    if (ops.shape(pair.A).length === 2) up = ops.linear(ops.linear(x, pair.A), pair.B);
    else {
      // One LoRA per sample: x (Bt, N, in) @ Aᵀ (Bt, in, r) @ Bᵀ (Bt, r, out)
      const down = ops.matmul(x, ops.transpose(pair.A, [0, 2, 1]));
      up = ops.matmul(down, ops.transpose(pair.B, [0, 2, 1]));
    }
    y = ops.add(y, ops.scale(up, lora.scale));
  }
  return y;
}
