// Broadcasting binary ops above the storage binding limit (the VAE's residual adds at 512 px
// are 256–512 MiB). The output's leading dimensions over which every operand is either
// whole (same size as the output) or broadcast (size 1 or absent) become rows: the unchanged
// kernels run on row ranges, whole operands viewed, broadcast ones bound whole. Outputs and
// whole operands' gradients are copied into place, broadcast operands' gradients summed.
// fp16 operands (inference) split the same way, every size in bytes of their dtype.
import { bytesPerElement } from '../../engine/dtype.ts';
import { BindingLimitError, type Engine } from '../../engine/engine.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { binaryBackward, binaryForward, type BinaryOp } from './binary-kernels.ts';
import { broadcastShapes } from './broadcast.ts';

interface Plan {
  rows: number;
  chunk: number;
  /** Elements per row of y. */
  perY: number;
  /** Elements per row of each operand, 0 when it is broadcast over the rows (bound whole). */
  per: [number, number];
  /** Trailing output shape of one row, and of each operand (right-aligned to the output). */
  tail: number[];
  tails: [number[], number[]];
}

type Kind = 'whole' | 'bcast' | null;

/**
 * How many leading output dims each operand is consistently whole over (same size as the
 * output) or broadcast over (size 1 or absent), and which of the two it is.
 */
function prefixDims(y: readonly number[], ops: readonly (readonly number[])[]): { k: number; kinds: Kind[] } {
  const kinds: Kind[] = ops.map(() => null);
  for (let k = 0; k < y.length; k++) {
    if (y[k] === 1) continue;
    const next = ops.map((s): Kind => (aligned(s, y.length)[k] === y[k] ? 'whole' : 'bcast'));
    if (next.some((kind, i) => kinds[i] !== null && kinds[i] !== kind)) return { k, kinds };
    next.forEach((kind, i) => (kinds[i] = kind));
  }
  return { k: y.length, kinds };
}

/** shape with leading 1s up to `rank` dims. */
const aligned = (shape: readonly number[], rank: number): number[] => [
  ...Array<number>(rank - shape.length).fill(1),
  ...shape,
];

function plan(engine: Engine, op: string, a: Tensor, b: Tensor): Plan | null {
  const yShape = broadcastShapes(a.shape, b.shape);
  const ySize = yShape.reduce((p, d) => p * d, 1);
  const limit = engine.maxBindingBytes;
  // y and the operands share one dtype (checked by the kernels).
  const bpe = bytesPerElement(a.dtype);
  if (Math.max(ySize * bpe, a.byteLength, b.byteLength) <= limit) return null;
  const { k, kinds } = prefixDims(yShape, [a.shape, b.shape]);
  const rows = yShape.slice(0, k).reduce((p, d) => p * d, 1);
  const perY = ySize / rows;
  // An operand whole over the rows is viewed row by row; a broadcast one is bound whole.
  const per = [a, b].map((t, i) => (kinds[i] === 'bcast' ? 0 : t.size / rows)) as [number, number];
  // Operands as big as the output are viewed; smaller ones (broadcast within a row) have
  // their rows copied out, which needs no aligned offsets.
  const viewed = [perY * bpe, ...per.filter((p) => p === perY).map((p) => p * bpe)];
  const copied = per.filter((p) => p > 0 && p < perY).map((p) => p * bpe);
  const what = `${op} (${a}, ${b})`;
  // Copies move whole 4-byte words: fp16 rows of an odd number of values are copied in even
  // numbers of rows, and the tensors must hold an even number of values so that the last
  // range is even too. (Alignment steps are powers of two: an odd chunk has step 1.)
  const oddRows = [perY, ...per].some((p) => (p * bpe) % 4 !== 0);
  if (oddRows && [ySize, a.size, b.size].some((n) => (n * bpe) % 4 !== 0)) {
    throw new Error(`${what}: an odd number of fp16 values cannot be split`);
  }
  let chunk = chunkRows(engine, what, rows, viewed, copied);
  if (oddRows && chunk < rows && chunk % 2 !== 0) {
    if (chunk === 1) throw new BindingLimitError(`${what}: two rows exceed the storage binding limit`);
    chunk -= 1;
  }
  const tails = [a, b].map((t) => aligned(t.shape, yShape.length).slice(k)) as [number[], number[]];
  return { rows, chunk, perY, per, tail: yShape.slice(k), tails };
}

function rowsOf(engine: Engine, t: Tensor, i: 0 | 1, p: Plan, start: number, count: number): Tensor {
  const per = p.per[i];
  if (per === 0) return t;
  if (per === p.perY) return engine.view(t, start * per, [count, ...p.tails[i]]);
  const out = engine.empty([count, ...p.tails[i]], t.dtype);
  engine.copyInto(out, 0, t, start * per, count * per);
  return out;
}

// a: A, b: B (broadcastable) → y: broadcastShapes(A, B)
export function binaryForwardSplit(engine: Engine, op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const p = plan(engine, op, a, b);
  if (!p || p.chunk >= p.rows) return binaryForward(engine, op, a, b);
  const y = engine.empty(broadcastShapes(a.shape, b.shape), a.dtype);
  for (let s = 0; s < p.rows; s += p.chunk) {
    const n = Math.min(p.chunk, p.rows - s);
    engine.scope(() => {
      const part = binaryForward(engine, op, rowsOf(engine, a, 0, p, s, n), rowsOf(engine, b, 1, p, s, n));
      engine.copyInto(y, s * p.perY, part);
    });
  }
  return y;
}

// a: A, b: B, dY: broadcastShapes(A, B) → [dA: A | null, dB: B | null]
export function binaryBackwardSplit(
  engine: Engine,
  op: BinaryOp,
  a: Tensor,
  b: Tensor,
  dY: Tensor,
  needs: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  const p = plan(engine, `${op} backward`, a, b);
  if (!p || p.chunk >= p.rows) return binaryBackward(engine, op, a, b, dY, needs);
  const out = [a, b].map((t, i) => {
    if (!needs[i]) return null;
    return p.per[i] === 0 ? engine.zeros(t.shape) : engine.empty(t.shape);
  }) as [Tensor | null, Tensor | null];
  for (let s = 0; s < p.rows; s += p.chunk) {
    const n = Math.min(p.chunk, p.rows - s);
    engine.scope(() => {
      const grads = binaryBackward(
        engine,
        op,
        rowsOf(engine, a, 0, p, s, n),
        rowsOf(engine, b, 1, p, s, n),
        engine.view(dY, s * p.perY, [n, ...p.tail]),
        needs,
      );
      grads.forEach((g, i) => {
        const dst = out[i];
        if (!g || !dst) return;
        if (p.per[i] === 0) engine.accumulate(dst, g);
        else engine.copyInto(dst, s * p.per[i], g);
      });
    });
  }
  return out;
}
