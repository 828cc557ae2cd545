// Reverse-mode autodiff. Every differentiable op that sees an input with requiresGrad
// appends a node to the engine's tape; backward() walks the tape in reverse (recording
// order is a topological order) and hands each node the gradient of its output.
import type { Tensor } from './tensor.ts';
import type { Engine } from './engine.ts';

export interface TapeNode {
  name: string;
  inputs: readonly Tensor[];
  output: Tensor;
  /** Tensors the backward needs; their storage is retained until the tape is cleared. */
  saved: readonly Tensor[];
  /**
   * dY ↦ one gradient per input (null where the input needs none). Must return fresh
   * tensors shaped like the inputs; the engine owns them afterwards.
   */
  backward: (dY: Tensor) => (Tensor | null)[];
}

export function releaseNode(node: TapeNode): void {
  for (const t of node.saved) t.storage.release();
}

/**
 * Run backward over `nodes` (in recording order), seeded with `seeds` (tensor → its
 * gradient, owned by this function). Leaves accumulate into `.grad`; everything else is freed.
 */
export function runBackward(engine: Engine, nodes: readonly TapeNode[], seeds: Map<Tensor, Tensor>): void {
  const grads = seeds;
  engine.noGrad(() => {
    for (let n = nodes.length - 1; n >= 0; n--) {
      const node = nodes[n];
      const dY = grads.get(node.output);
      if (dY) {
        grads.delete(node.output);
        const dXs = node.backward(dY);
        if (dXs.length !== node.inputs.length) {
          throw new Error(`${node.name}: backward returned ${dXs.length} grads for ${node.inputs.length} inputs`);
        }
        // 1. Make every gradient a tensor of its own before any is consumed: gradients are
        //    accumulated in place, and a backward may return dY itself or one tensor twice.
        const owned: (Tensor | null)[] = [];
        const used = new Set<Tensor>();
        let dYKept = false;
        dXs.forEach((dX, i) => {
          const x = node.inputs[i];
          if (!dX || !x.requiresGrad) {
            owned.push(null);
            return;
          }
          if (dX.size !== x.size) {
            throw new Error(`${node.name}: grad ${i} has shape [${dX.shape}] for input [${x.shape}]`);
          }
          if (dX === dY) {
            if (dYKept) dX = engine.copy(dX);
            dYKept = true;
          } else if (used.has(dX)) dX = engine.copy(dX);
          used.add(dX);
          owned.push(dX);
        });
        // Returned gradients nobody takes (inputs without requiresGrad) are freed.
        for (const dX of dXs) if (dX && dX !== dY && !used.has(dX)) dX.dispose();
        // 2. Hand them to their inputs: leaves accumulate into .grad, others into the map.
        owned.forEach((dX, i) => {
          if (!dX) return;
          const x = node.inputs[i];
          if (dX.shape.join() !== x.shape.join()) dX = engine.reshapeOwned(dX, x.shape);
          if (x.node === null) engine.accumulateLeafGrad(x, dX);
          else {
            const prev = grads.get(x);
            if (prev) {
              engine.accumulate(prev, dX);
              dX.dispose();
            } else grads.set(x, dX);
          }
        });
        if (!dYKept) dY.dispose();
      }
      releaseNode(node);
    }
  });
  // Gradients that reached no node (e.g. seeds for tensors not on the tape) are dropped.
  for (const g of grads.values()) g.dispose();
}
