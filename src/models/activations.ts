// Where a network's data changes dtype. With fp16 activations (engine only, inference only,
// adapters with shader-f16: src/engine/half-storage.ts) the UNet and the VAE compute on fp16
// activations, while what goes in (latents, prompts, time embeddings) and what comes out
// (ε, images) stays fp32 for the samplers and image code. Other backends have no such ops,
// and these are the identity there.
import type { TensorOps } from './tensor-ops.ts';

/** `x` in the backend's activation dtype: the caller keeps owning `x`. */
export const toActivation = <T>(ops: TensorOps<T>, x: T): T => ops.toActivation?.(x) ?? x;

/** A network's output `x` (its own intermediate) as fp32; an fp16 `x` is released. */
export function toFloat32<T>(ops: TensorOps<T>, x: T): T {
  const y = ops.toFloat32?.(x) ?? x;
  if (y !== x) ops.release?.(x);
  return y;
}
