// Gradient checkpointing: run a segment (e.g. one UNet block) without keeping its
// intermediates until backward, then recompute it. Trades one extra forward for memory.
import type { Engine } from './engine.ts';
import { runBackward } from './tape.ts';
import type { Tensor } from './tensor.ts';

export function checkpoint(engine: Engine, fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[]): Tensor {
  // Without gradients the segment is only a memory boundary: its intermediates are freed
  // as soon as it returns (a whole UNet or VAE otherwise holds every activation at once).
  if (!engine.isGradEnabled) return engine.scope(() => fn(...inputs));
  // 1. Forward on a private tape that is dropped at once: the segment's intermediates die
  //    with the scope. A non-empty tape tells us that something inside (an input or a
  //    parameter captured by `fn`) requires grad.
  const outer = engine.tape;
  engine.tape = [];
  let output: Tensor;
  let needsGrad: boolean;
  try {
    output = engine.scope(() => fn(...inputs));
    needsGrad = engine.tape.length > 0;
    engine.clearTape();
  } finally {
    engine.tape = outer;
  }
  if (!needsGrad) return output;
  // 2. One node stands for the whole segment.
  output.node = null;
  engine.pushNode({
    name: 'checkpoint',
    inputs,
    output,
    saved: inputs,
    backward: (dY) => {
      // 3. Recompute from leaf aliases of the inputs on a fresh tape, backpropagate dY
      //    through it, and hand the aliases' grads back. Captured parameters accumulate
      //    their `.grad` directly, as they would without checkpointing.
      const saved = engine.tape;
      engine.tape = [];
      try {
        return engine.withGrad(() =>
          engine.scope(() => {
            const xs = inputs.map((x) => engine.alias(x, x.requiresGrad));
            const y = fn(...xs);
            const nodes = engine.tape;
            engine.tape = [];
            runBackward(engine, nodes, new Map([[y, engine.copy(dY)]]));
            return xs.map((x) => {
              const g = x.grad;
              x.grad = null;
              return g;
            });
          }),
        );
      } finally {
        engine.tape = saved;
      }
    },
  });
  return output;
}
