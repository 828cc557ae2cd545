// diffusers' sinusoidal timestep embedding as a differentiable op. Timesteps are data in
// the UNet, but the op is complete: its backward gives ∂L/∂t when t requires grad.
import type { Engine } from '../../engine/engine.ts';
import { Tensor } from '../../engine/tensor.ts';
import type { TimestepEmbeddingOptions } from './timestep-embedding-reference.ts';
import { timestepEmbeddingBackward, timestepEmbeddingForward } from './timestep-embedding-kernels.ts';

export type { TimestepEmbeddingOptions } from './timestep-embedding-reference.ts';

/**
 * get_timestep_embedding(timesteps, dim, flip_sin_to_cos, downscale_freq_shift, scale,
 * max_period) → (B, dim). Defaults are diffusers' function defaults (flipSinToCos false,
 * downscaleFreqShift 1); the SD UNet passes { flipSinToCos: true, downscaleFreqShift: 0 }.
 */
export function timestepEmbedding(timesteps: Tensor, dim: number, opts?: TimestepEmbeddingOptions): Tensor;
export function timestepEmbedding(
  engine: Engine,
  timesteps: ArrayLike<number>,
  dim: number,
  opts?: TimestepEmbeddingOptions,
): Tensor;
export function timestepEmbedding(
  a: Tensor | Engine,
  b: ArrayLike<number> | number,
  c?: number | TimestepEmbeddingOptions,
  d?: TimestepEmbeddingOptions,
): Tensor {
  if (a instanceof Tensor) return op(a, b as number, c as TimestepEmbeddingOptions | undefined);
  const values = b as ArrayLike<number>;
  return op(a.tensor(values, [values.length]), c as number, d);
}

// t: (B) → (B, dim)
function op(t: Tensor, dim: number, opts?: TimestepEmbeddingOptions): Tensor {
  const e = t.engine;
  const o = { ...opts }; // the caller may change its object before backward runs
  const y = timestepEmbeddingForward(e, t, dim, o);
  e.record('timestep_embedding', [t], y, [t], (dY) => [timestepEmbeddingBackward(e, t, dY, dim, o)]);
  return y;
}
