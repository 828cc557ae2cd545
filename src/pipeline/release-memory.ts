// Between jobs the buffer pool's free lists can hold gigabytes at Stable Diffusion sizes
// (activations of a 512 px UNet pass), which no later job of another shape reuses.
import type { Engine } from '../engine/engine.ts';

/** Submits pending work, waits for the GPU to finish it, then destroys the pool's free buffers. */
export async function releaseFreeBuffers(engine: Engine): Promise<void> {
  // Released buffers may still be referenced by commands not yet submitted: destroying
  // them first would invalidate that submit.
  engine.flush();
  await engine.device.queue.onSubmittedWorkDone();
  engine.pool.trim();
}
