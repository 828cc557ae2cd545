// Linear on inputs above the storage binding limit (many rows: a big batch of tokens or
// pixels): the unchanged kernels run on row ranges of x; y and dX are copied into place,
// dW and dB sum over the ranges. The weight is bound whole.
import type { Engine } from '../../engine/engine.ts';
import { bytesPerElement } from '../../engine/dtype.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { linearBackward, linearForward } from './linear-kernels.ts';

/** Rows per range, or null when x and y fit whole. */
function rowsPerRange(engine: Engine, x: Tensor, outF: number, what: string): number | null {
  const inF = x.shape[x.rank - 1];
  const rows = x.size / inF;
  const bpe = bytesPerElement(x.dtype);
  if (Math.max(inF, outF) * rows * bpe <= engine.maxBindingBytes) return null;
  return chunkRows(engine, `${what} (x [${x.shape.join(',')}], ${outF} outputs)`, rows, [inF * bpe, outF * bpe]);
}

// x: (…, in), weight: (out, in), bias: (out) | null → y: (…, out)
export function linearForwardSplit(engine: Engine, x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [outF, inF] = weight.shape;
  const chunk = rowsPerRange(engine, x, outF, 'linear');
  if (chunk === null) return linearForward(engine, x, weight, bias);
  const rows = x.size / inF;
  const y = engine.empty([...x.shape.slice(0, -1), outF], x.dtype);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    engine.scope(() => {
      const part = linearForward(engine, engine.view(x, r0 * inF, [n, inF]), weight, bias);
      engine.copyInto(y, r0 * outF, part);
    });
  }
  return y;
}

// dY: (…, out) → [dX: like x, dW: (out, in), dB: (out)] (null where `need` is false)
export function linearBackwardSplit(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  dY: Tensor,
  need: readonly [boolean, boolean, boolean] = [true, true, true],
): [Tensor | null, Tensor | null, Tensor | null] {
  const [outF, inF] = weight.shape;
  const chunk = rowsPerRange(engine, x, outF, 'linear backward');
  if (chunk === null) return linearBackward(engine, x, weight, dY, need);
  const rows = x.size / inF;
  const dX = need[0] ? engine.empty(x.shape, x.dtype) : null;
  const dW = need[1] ? engine.zeros(weight.shape, weight.dtype) : null;
  const dB = need[2] ? engine.zeros([outF], dY.dtype) : null;
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    engine.scope(() => {
      const [gx, gw, gb] = linearBackward(
        engine,
        engine.view(x, r0 * inF, [n, inF]),
        weight,
        engine.view(dY, r0 * outF, [n, outF]),
        need,
      );
      if (dX && gx) engine.copyInto(dX, r0 * inF, gx);
      if (dW && gw) engine.accumulate(dW, gw);
      if (dB && gb) engine.accumulate(dB, gb);
    });
  }
  return [dX, dW, dB];
}
