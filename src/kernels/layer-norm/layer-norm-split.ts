// Layer norm on tensors above the storage binding limit: rows are independent, so the
// unchanged kernels run on views of row ranges; outputs are copied into place and dW, dB
// sum over the ranges. fp16 activations (inference) split the same way, in bytes of x's dtype.
import { bytesPerElement } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import {
  layerNormBackward,
  layerNormForward,
  type LayerNormBackwardOptions,
  type LayerNormForwardResult,
  type LayerNormGrads,
  type LayerNormKernelOptions,
} from './layer-norm-kernels.ts';

/** Rows per range, or null when x fits whole (rows of C values, plus their f32 statistics). */
function rowsPerRange(engine: Engine, x: Tensor, what: string): number | null {
  const C = x.shape[x.rank - 1];
  const R = x.size / C;
  if (x.byteLength <= engine.maxBindingBytes) return null;
  const desc = `${what} (x [${x.shape.join(',')}])`;
  // Ranges of y are copied into place as whole 4-byte words; their starts are aligned already.
  if (x.byteLength % 4 !== 0) throw new Error(`${desc}: an odd number of fp16 values cannot be split`);
  // mean and rstd ranges are copied (not viewed), so only x's rows need aligned starts.
  return chunkRows(engine, desc, R, [C * bytesPerElement(x.dtype)], [4]);
}

/** Elements [start, start + n) of t as a new tensor. */
function part(engine: Engine, t: Tensor, start: number, n: number): Tensor {
  const out = engine.empty([n]);
  engine.copyInto(out, 0, t, start, n);
  return out;
}

const rows2d = (engine: Engine, t: Tensor, r0: number, n: number, C: number) => engine.view(t, r0 * C, [n, C]);

// x: (…, C); weight, bias: (C) → y: like x; mean, rstd: (R)
export function layerNormForwardSplit(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
  options: LayerNormKernelOptions = {},
): LayerNormForwardResult {
  const chunk = rowsPerRange(engine, x, 'layer norm');
  if (chunk === null) return layerNormForward(engine, x, weight, bias, eps, options);
  const C = x.shape[x.rank - 1];
  const R = x.size / C;
  const y = engine.empty(x.shape, x.dtype);
  const mean = engine.empty([R]);
  const rstd = engine.empty([R]);
  for (let r0 = 0; r0 < R; r0 += chunk) {
    const n = Math.min(chunk, R - r0);
    engine.scope(() => {
      const r = layerNormForward(engine, rows2d(engine, x, r0, n, C), weight, bias, eps, options);
      engine.copyInto(y, r0 * C, r.y);
      engine.copyInto(mean, r0, r.mean);
      engine.copyInto(rstd, r0, r.rstd);
    });
  }
  return { y, mean, rstd };
}

// x, dY: (…, C); weight: (C); mean, rstd: (R) → dX: like x, dW, dB: (C)
export function layerNormBackwardSplit(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dY: Tensor,
  options: LayerNormBackwardOptions = {},
): LayerNormGrads {
  const chunk = rowsPerRange(engine, x, 'layer norm backward');
  if (chunk === null) return layerNormBackward(engine, x, weight, mean, rstd, dY, options);
  const C = x.shape[x.rank - 1];
  const R = x.size / C;
  const out: LayerNormGrads = {
    dX: (options.need?.x ?? true) ? engine.empty(x.shape) : null,
    dW: (options.need?.weight ?? true) ? engine.zeros([C]) : null,
    dB: (options.need?.bias ?? true) ? engine.zeros([C]) : null,
  };
  for (let r0 = 0; r0 < R; r0 += chunk) {
    const n = Math.min(chunk, R - r0);
    engine.scope(() => {
      const g = layerNormBackward(
        engine,
        rows2d(engine, x, r0, n, C),
        weight,
        part(engine, mean, r0, n),
        part(engine, rstd, r0, n),
        rows2d(engine, dY, r0, n, C),
        options,
      );
      if (g.dX) engine.copyInto(out.dX!, r0 * C, g.dX);
      if (g.dW) engine.accumulate(out.dW!, g.dW);
      if (g.dB) engine.accumulate(out.dB!, g.dB);
    });
  }
  return out;
}
