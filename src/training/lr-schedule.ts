// The learning rate of the encoder's pre-training (paper App. B): linear warm-up to the peak,
// then cosine decay to zero at the last step.

/** Learning rate of update number `step` (0-based) out of `steps`, with `warmup` warm-up updates. */
export function learningRateAt(step: number, steps: number, peak: number, warmup: number): number {
  if (!(steps >= 1) || step < 0 || step >= steps)
    throw new RangeError(`learning rate: step ${step} outside [0, ${steps})`);
  // Warm-up: peak·1/W, 2/W, …, W/W, so the first update is not a zero-length one.
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const decaySteps = steps - warmup;
  // Cosine from peak (first update after warm-up) towards 0 (reached one update after the last).
  return 0.5 * peak * (1 + Math.cos((Math.PI * (step - warmup)) / decaySteps));
}
