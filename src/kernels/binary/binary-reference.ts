// CPU reference (plain loops, float64) for broadcasting add/sub/mul/div and the scalar ops.
// Broadcasting is done here from multi-indices, independently of broadcast.ts's merged
// layout (only the shape rule is shared).
import type { BinaryOp } from './binary-kernels.ts';
import { broadcastShapes } from './broadcast.ts';

/** For each element of `out`, the flat index of the element of `shape` that it reads. */
export function broadcastIndexRef(out: readonly number[], shape: readonly number[]): Int32Array {
  const n = out.reduce((a, b) => a * b, 1);
  const index = new Int32Array(n);
  const coord = new Array<number>(out.length).fill(0);
  const offset = out.length - shape.length;
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let d = 0; d < shape.length; d++) k = k * shape[d] + (shape[d] === 1 ? 0 : coord[d + offset]);
    index[i] = k;
    for (let d = out.length - 1; d >= 0; d--) {
      if (++coord[d] < out[d]) break;
      coord[d] = 0;
    }
  }
  return index;
}

const apply = (op: BinaryOp, a: number, b: number): number =>
  op === 'add' ? a + b : op === 'sub' ? a - b : op === 'mul' ? a * b : a / b;

// a: aShape, b: bShape → y: broadcastShapes(aShape, bShape)
export function binaryForwardRef(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): { y: Float64Array; shape: number[] } {
  const shape = broadcastShapes(aShape, bShape);
  const ia = broadcastIndexRef(shape, aShape);
  const ib = broadcastIndexRef(shape, bShape);
  const y = Float64Array.from(ia, (_, i) => apply(op, a[ia[i]], b[ib[i]]));
  return { y, shape };
}

// dY: the broadcast shape → [dA: aShape, dB: bShape], summed over what was broadcast
export function binaryBackwardRef(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  dY: ArrayLike<number>,
): [Float64Array, Float64Array] {
  const shape = broadcastShapes(aShape, bShape);
  const ia = broadcastIndexRef(shape, aShape);
  const ib = broadcastIndexRef(shape, bShape);
  const dA = new Float64Array(a.length);
  const dB = new Float64Array(b.length);
  for (let i = 0; i < ia.length; i++) {
    const x = a[ia[i]];
    const z = b[ib[i]];
    const g = dY[i];
    if (op === 'add' || op === 'sub') {
      dA[ia[i]] += g;
      dB[ib[i]] += op === 'add' ? g : -g;
    } else if (op === 'mul') {
      dA[ia[i]] += g * z;
      dB[ib[i]] += g * x;
    } else {
      dA[ia[i]] += g / z;
      dB[ib[i]] -= (g * x) / (z * z);
    }
  }
  return [dA, dB];
}

// y = s·x + t elementwise (scale: t = 0; addScalar: s = 1)
export const affineForwardRef = (x: ArrayLike<number>, s: number, t: number): Float64Array =>
  Float64Array.from(x, (v) => s * v + t);
