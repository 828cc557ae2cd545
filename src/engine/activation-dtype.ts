// Which dtype an op's activations are in. fp32 is the rule; fp16 activations (half the
// memory, see half-storage.ts) are for inference only: gradients of a 12-step tuning run
// are small enough that fp16 rounding of the saved activations would dominate them, so
// training keeps fp32, and an fp16 activation reaching an op while gradients are recorded
// is a mistake in the caller, reported as such.
import type { DType } from './dtype.ts';
import type { Tensor } from './tensor.ts';

/** The common dtype of `xs` (an op's activation inputs), which is also its output's. */
export function activationDtype(op: string, ...xs: readonly Tensor[]): DType {
  const dtype = xs[0]?.dtype ?? 'f32';
  for (const x of xs) {
    if (x.dtype !== dtype) {
      throw new Error(`${op}: activations of mixed dtypes (${xs.map(String).join(', ')}); cast one with engine.cast`);
    }
  }
  if (dtype === 'f16') {
    const engine = xs[0].engine;
    if (engine.isGradEnabled) {
      throw new Error(
        `${op}: fp16 activations (${xs[0]}) are for inference, inside engine.noGrad; training keeps fp32 activations`,
      );
    }
    if (!engine.f16) throw new Error(`${op}: fp16 activations need an adapter with shader-f16; this one has none`);
  }
  return dtype;
}
