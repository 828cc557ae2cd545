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
    // Without gradients each intermediate goes back to the pool once consumed (ops.release):
    // at 512 px y, up and its scaled copy are (B, 4096, 320) f32 = 10 MiB each.
    const free = (t: T) => ops.release?.(t);
    let up: T;
    if (ops.shape(pair.A).length === 2) {
      const down = ops.linear(x, pair.A);
      up = ops.linear(down, pair.B);
      free(down);
    } else {
      // One LoRA per sample: x (Bt, N, in) @ Aᵀ (Bt, in, r) @ Bᵀ (Bt, r, out)
      const at = ops.transpose(pair.A, [0, 2, 1]);
      const down = ops.matmul(x, at);
      const bt = ops.transpose(pair.B, [0, 2, 1]);
      up = ops.matmul(down, bt);
      for (const t of [at, down, bt]) free(t);
    }
    const scaled = ops.scale(up, lora.scale);
    free(up);
    const sum = ops.add(y, scaled);
    free(y);
    free(scaled);
    y = sum;
  }
  return y;
}
