// WGSL mean/sum squared error and its backward, and their dispatch (no autograd here: see
// mse-loss.ts). The forward is a fused (pred − target)² tree reduction over chunks of the
// input; the chunks' partial sums are added by reduce/'s row kernel, so any n takes at
// most two passes.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import { chunkRows, forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { reduceToShape } from '../reduce/reduce-kernels.ts';
import { elementwiseMain } from '../elementwise-main.ts';

export type MseReduction = 'mean' | 'sum';

const WG = 256;
/** Elements per workgroup (16 per invocation) before the input is split into chunks. */
const CHUNK = 4096;
/** At most this many partial sums, so that the second pass is one workgroup. */
const MAX_CHUNKS = 256;

// pred, target: (n) → partial: (chunks), scale · Σ (pred − target)² over each chunk
// (the target is `truth` in WGSL, where `target` is a reserved word)
const partialKernel = defineKernel({
  name: 'mse_loss_forward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, chunkLen: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> truth: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> sums: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = flatWorkgroup(wid, nwg);
  let start = w * p.chunkLen;
  let end = min(start + p.chunkLen, p.n);
  var acc = 0.0;
  for (var i = start + lid; i < end; i += ${WG}u) {
    let d = pred[i] - truth[i];
    acc += d * d;
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sums[lid] += sums[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[w] = sums[0] * p.scale; }
}`,
});

// pred, target: (n), dL: (1) → dX: (n) = coef · dL · (pred − target)
const backwardKernel = defineKernel({
  name: 'mse_loss_backward',
  storage: ['read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, coef: f32 }
@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> truth: array<f32>;
@group(0) @binding(2) var<storage, read> dL: array<f32>;
@group(0) @binding(3) var<storage, read_write> dX: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i < p.n) { dX[i] = p.coef * dL[0] * (pred[i] - truth[i]); }
}`,
});

const scaleOf = (n: number, reduction: MseReduction) => (reduction === 'mean' ? 1 / n : 1);

function check(pred: Tensor, target: Tensor): void {
  if (pred.dtype !== 'f32' || target.dtype !== 'f32') throw new Error(`mseLoss: f32 only, got ${pred}, ${target}`);
  if (pred.shape.join() !== target.shape.join()) throw new Error(`mseLoss: shapes differ: ${pred} vs ${target}`);
}

// pred, target: (any, same shape) → L: (1)
export function mseLossForward(engine: Engine, pred: Tensor, target: Tensor, reduction: MseReduction = 'mean'): Tensor {
  check(pred, target);
  const n = pred.size;
  const scale = scaleOf(n, reduction);
  if (chunkRows(engine, `mse_loss (${pred})`, n, [4]) < n) {
    // Element ranges under the binding limit: sum each range's loss, then scale.
    const loss = engine.zeros([1]);
    forEachRowRange(engine, `mse_loss (${pred})`, n, [pred, target], ([p, t]) =>
      engine.accumulate(loss, mseLossForward(engine, p, t, 'sum')),
    );
    if (scale === 1) return loss;
    const scaled = reduceToShape(engine, loss, [1], scale);
    loss.dispose();
    return scaled;
  }
  const chunkLen = Math.max(CHUNK, Math.ceil(n / MAX_CHUNKS));
  const chunks = Math.max(1, Math.ceil(n / chunkLen));
  const partial = engine.empty(chunks === 1 ? [1] : [chunks]);
  // One chunk is the whole sum: scale it there and skip the second pass.
  const params = [u32(n), u32(chunkLen), f32(chunks === 1 ? scale : 1)];
  engine.dispatch(partialKernel, [pred, target, partial], grid(chunks), params);
  if (chunks === 1) return partial;
  const loss = reduceToShape(engine, partial, [1], scale);
  partial.dispose();
  return loss;
}

// pred, target: (any, same shape), dL: (1) → [dPred, dTarget] (null where not `needs`)
export function mseLossBackward(
  engine: Engine,
  pred: Tensor,
  target: Tensor,
  dL: Tensor,
  reduction: MseReduction = 'mean',
  needs: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  check(pred, target);
  const coef = 2 * scaleOf(pred.size, reduction);
  const grad = (sign: number) => {
    const dX = engine.empty(pred.shape);
    forEachRowRange(engine, `mse_loss backward (${pred})`, pred.size, [pred, target, dX], ([p, t, d]) =>
      engine.dispatch(backwardKernel, [p, t, dL, d], grid1d(p.size, ELEMENTWISE_WG), [u32(p.size), f32(sign * coef)]),
    );
    return dX;
  };
  return [needs[0] ? grad(1) : null, needs[1] ? grad(-1) : null];
}

export const mseLossKernels = [partialKernel, backwardKernel];
