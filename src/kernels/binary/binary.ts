// Broadcasting add/sub/mul/div and the scalar ops scale/addScalar as differentiable ops:
// forward on the GPU, backward recorded on the tape.
import { activationDtype } from '../../engine/activation-dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { affineForward, type BinaryOp } from './binary-kernels.ts';
import { binaryBackwardSplit, binaryForwardSplit } from './binary-split.ts';

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (a.engine !== b.engine) throw new Error(`${op}: tensors from two engines`);
  // fp16 operands (inference only) give an fp16 y; training keeps fp32.
  activationDtype(op, a, b);
  const e = a.engine;
  const y = binaryForwardSplit(e, op, a, b);
  // add/sub's backward reads only the shapes, so their inputs' memory need not outlive them.
  const saved = op === 'mul' || op === 'div' ? [a, b] : [];
  e.record(op, [a, b], y, saved, (dY) => binaryBackwardSplit(e, op, a, b, dY, [a.requiresGrad, b.requiresGrad]));
  return y;
}

/** a + b with NumPy broadcasting, e.g. (B,C,H,W) + (1,C,1,1), (B,N,C) + (C). */
export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
/** a − b with NumPy broadcasting. */
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
/** a · b elementwise with NumPy broadcasting. */
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
/** a / b elementwise with NumPy broadcasting. */
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);

/** s · x for a CPU number s. */
export function scale(x: Tensor, s: number): Tensor {
  activationDtype('scale', x);
  const e = x.engine;
  const y = affineForward(e, x, s, 0);
  e.record('scale', [x], y, [], (dY) => [affineForward(e, dY, s, 0)]);
  return y;
}

/** x + s for a CPU number s. */
export function addScalar(x: Tensor, s: number): Tensor {
  activationDtype('addScalar', x);
  const e = x.engine;
  const y = affineForward(e, x, 1, s);
  // dX = dY: handed through, as reshape does; the tape copies it if needed twice.
  e.record('addScalar', [x], y, [], (dY) => [dY]);
  return y;
}
