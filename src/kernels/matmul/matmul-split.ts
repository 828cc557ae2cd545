// Batched matmul above the storage binding limit (e.g. attention-sized products over a big
// batch): the unchanged kernels run on batch ranges; a 2-D operand shared by the batch is
// bound whole. The forward writes each range of the output in place; gradients are copied
// into place, a shared operand's summing over ranges.
import type { Engine } from '../../engine/engine.ts';
import { bytesPerElement, type DType } from '../../engine/dtype.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { matmulBackward, matmulDims, matmulForward, productDtype, type MatmulKernelOptions } from './matmul-kernels.ts';

interface Plan {
  batch: number;
  chunk: number;
  /** Elements per batch item of a, b (0: shared) and y. */
  perA: number;
  perB: number;
  perY: number;
  M: number;
  N: number;
}

// y: the dtype of the result (or of the gradient viewed per batch item, dY).
function plan(engine: Engine, a: Tensor, b: Tensor, y: DType, o: MatmulKernelOptions, what: string): Plan | null {
  const d = matmulDims(a.shape, b.shape, o);
  // Each operand at its own width: fp16 activations may meet an f32 weight (and vice versa).
  const perY = d.M * d.N * bytesPerElement(y);
  const limit = engine.maxBindingBytes;
  if (a.byteLength <= limit && b.byteLength <= limit && d.batch * perY <= limit) return null;
  const desc = `${what} (a [${a.shape.join(',')}], b [${b.shape.join(',')}])`;
  const viewed = [d.strideA * bytesPerElement(a.dtype), d.strideB * bytesPerElement(b.dtype), perY].filter(
    (x) => x > 0,
  );
  const chunk = chunkRows(engine, desc, d.batch, viewed);
  return { batch: d.batch, chunk, perA: d.strideA, perB: d.strideB, perY: d.M * d.N, M: d.M, N: d.N };
}

/** A view of batch items [start, start + count) of a batched operand (flattened batch), or the shared operand. */
function items(engine: Engine, t: Tensor, per: number, start: number, count: number): Tensor {
  if (per === 0) return t;
  return engine.view(t, start * per, [count, ...t.shape.slice(t.rank - 2)]);
}

// Same layouts as matmulForward.
export function matmulForwardSplit(engine: Engine, a: Tensor, b: Tensor, o: MatmulKernelOptions = {}): Tensor {
  const out = productDtype([a, b], o.out);
  const p = plan(engine, a, b, out, o, 'matmul');
  if (!p || p.chunk >= p.batch) return matmulForward(engine, a, b, o);
  const d = matmulDims(a.shape, b.shape, o);
  const y = engine.empty([...d.batchShape, d.M, d.N], out);
  for (let s = 0; s < p.batch; s += p.chunk) {
    const n = Math.min(p.chunk, p.batch - s);
    // Straight into y's range: aligned, as chunkRows counted y's items among the views.
    engine.scope(() => {
      const into = engine.view(y, s * p.perY, [n, p.M, p.N]);
      matmulForward(engine, items(engine, a, p.perA, s, n), items(engine, b, p.perB, s, n), { ...o, into });
    });
  }
  return y;
}

// Same layouts as matmulBackward.
export function matmulBackwardSplit(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  dY: Tensor,
  o: MatmulKernelOptions = {},
  need: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  const p = plan(engine, a, b, dY.dtype, o, 'matmul backward');
  if (!p || p.chunk >= p.batch) return matmulBackward(engine, a, b, dY, o, need);
  // Batched gradients are copied into place; shared ones sum over the ranges.
  const grad = (t: Tensor, per: number, want: boolean) => {
    if (!want) return null;
    return per === 0 ? engine.zeros(t.shape, t.dtype) : engine.empty(t.shape, t.dtype);
  };
  const dA = grad(a, p.perA, need[0]);
  const dB = grad(b, p.perB, need[1]);
  for (let s = 0; s < p.batch; s += p.chunk) {
    const n = Math.min(p.chunk, p.batch - s);
    engine.scope(() => {
      const [ga, gb] = matmulBackward(
        engine,
        items(engine, a, p.perA, s, n),
        items(engine, b, p.perB, s, n),
        engine.view(dY, s * p.perY, [n, p.M, p.N]),
        o,
        need,
      );
      const put = (dst: Tensor | null, g: Tensor | null, per: number) => {
        if (!dst || !g) return;
        if (per === 0) engine.accumulate(dst, g);
        else engine.copyInto(dst, s * per, g);
      };
      put(dA, ga, p.perA);
      put(dB, gb, p.perB);
    });
  }
  return [dA, dB];
}
