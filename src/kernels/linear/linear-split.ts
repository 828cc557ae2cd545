// Linear on inputs above the storage binding limit (many rows: a big batch of tokens or
// pixels): the unchanged kernels run on row ranges of x, writing y's rows in place; dX is
// copied into place, dW and dB sum over the ranges. A weight above the limit goes in ranges
// of output features (rows of the weight): each writes its block of y's columns in place;
// in backward dX sums over them and dW's rows are copied into place.
import type { Engine } from '../../engine/engine.ts';
import { bytesPerElement } from '../../engine/dtype.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { sliceForward } from '../concat/concat-kernels.ts';
import { linearBackward, linearForward } from './linear-kernels.ts';

/** Output features per range when the weight itself is above the binding limit, else null. */
function outputsPerRange(engine: Engine, weight: Tensor): number | null {
  const [outF, inF] = weight.shape;
  const rowBytes = inF * bytesPerElement(weight.dtype);
  if (outF * rowBytes <= engine.maxBindingBytes) return null;
  // Weight rows are copied out (no 256-byte alignment needed), but a copy moves whole 4-byte
  // words: an even count keeps the ranges of an fp16 weight and bias on whole words.
  const fit = Math.floor(engine.maxBindingBytes / rowBytes);
  return fit >= 2 ? fit - (fit % 2) : 1;
}

/** Rows [start, start + n) of a 2-D or 1-D tensor as a new tensor. */
function rowsCopy(engine: Engine, t: Tensor, start: number, n: number): Tensor {
  const per = t.size / t.shape[0];
  const out = engine.empty([n, ...t.shape.slice(1)], t.dtype);
  engine.copyInto(out, 0, t, start * per, n * per);
  return out;
}

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
  const outs = outputsPerRange(engine, weight);
  const chunk = rowsPerRange(engine, x, outF, 'linear');
  if (outs === null && chunk === null) return linearForward(engine, x, weight, bias);
  const rows = x.size / inF;
  const step = chunk ?? rows;
  const y = engine.empty([...x.shape.slice(0, -1), outF], x.dtype);
  // The weight (whole, or in ranges of output features, each copied out once) times each
  // range of rows, written straight into y: a weight range's result is a block of columns
  // of y's rows (intoColumns), so no copy or concat has to move an odd number of halves.
  for (let o0 = 0; o0 < outF; o0 += outs ?? outF) {
    const n = Math.min(outs ?? outF, outF - o0);
    engine.scope(() => {
      const w = outs === null ? weight : rowsCopy(engine, weight, o0, n);
      const b = outs === null ? bias : bias && rowsCopy(engine, bias, o0, n);
      for (let r0 = 0; r0 < rows; r0 += step) {
        const m = Math.min(step, rows - r0);
        engine.scope(() => {
          const into = engine.view(y, r0 * outF, [m, outF]);
          const xs = engine.view(x, r0 * inF, [m, inF]);
          linearForward(engine, xs, w, b, { into, intoColumns: { offset: o0, stride: outF } });
        });
      }
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
  const outs = outputsPerRange(engine, weight);
  if (outs !== null) {
    // Ranges of output features: dX sums over them, dW's rows and dB are copied into place.
    const dX = need[0] ? engine.zeros(x.shape, x.dtype) : null;
    const dW = need[1] ? engine.empty(weight.shape, weight.dtype) : null;
    const dB = need[2] ? engine.empty([outF], dY.dtype) : null;
    for (let o0 = 0; o0 < outF; o0 += outs) {
      const n = Math.min(outs, outF - o0);
      engine.scope(() => {
        const dYs = sliceForward(engine, dY, -1, o0, n);
        const [gx, gw, gb] = linearBackwardSplit(engine, x, rowsCopy(engine, weight, o0, n), dYs, need);
        if (dX && gx) engine.accumulate(dX, gx);
        if (dW && gw) engine.copyInto(dW, o0 * inF, gw);
        if (dB && gb) engine.copyInto(dB, o0, gb);
      });
    }
    return [dX, dW, dB];
  }
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
