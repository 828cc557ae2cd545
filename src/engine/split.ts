// Splitting work so that no storage binding exceeds the device's limit (Engine.maxBindingBytes).
// Ops run their unchanged kernels on views of consecutive ranges of their tensors' leading
// dimension and assemble the outputs with buffer copies, which no binding limit applies to.
// Real model sizes need it (the 49408×768 CLIP token table, 512 px VAE activations); tests
// lower the limit (Engine.setBindingLimit) so small shapes take the same paths.
import { BindingLimitError, type Engine } from './engine.ts';
import { bytesPerElement } from './dtype.ts';
import type { Tensor } from './tensor.ts';

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Units (rows) per chunk of `total` so that for every entry of `unitBytes` (the bytes one
 * unit takes in each tensor the chunk binds as a view) the chunk fits the binding limit and
 * every chunk starts at an aligned offset; `freshBytes` are per-unit bytes of buffers made
 * per chunk (they must fit, but start at zero). Returns `total` when everything fits.
 */
export function chunkRows(
  engine: Engine,
  what: string,
  total: number,
  unitBytes: readonly number[],
  freshBytes: readonly number[] = [],
): number {
  const limit = engine.maxBindingBytes;
  const widest = Math.max(0, ...unitBytes, ...freshBytes);
  if (total * widest <= limit) return Math.max(1, total);
  const align = engine.bindingAlignment;
  let step = 1;
  for (const b of unitBytes) {
    if (b <= 0) continue;
    const s = align / gcd(b, align);
    step = (step * s) / gcd(step, s);
  }
  const units = Math.floor(limit / widest / step) * step;
  if (units < 1) {
    throw new BindingLimitError(
      `${what}: one aligned chunk of ${step} rows of up to ${widest} bytes exceeds the storage binding limit ` +
        `of ${limit} bytes; the op cannot split this shape further`,
    );
  }
  return Math.min(units, total);
}

/** Bytes per leading-dimension row of `t`. */
export const rowBytes = (t: Tensor): number => (t.size / Math.max(1, t.shape[0])) * bytesPerElement(t.dtype);

/** A view of rows [start, start + count) of `t` along its leading dimension. */
export function rowView(t: Tensor, start: number, count: number): Tensor {
  const per = t.size / t.shape[0];
  return t.engine.view(t, start * per, [count, ...t.shape.slice(1)]);
}

// mapRows and sumOverRows: fn on row views of each range of `chunk` rows, each in its own
// scope, its outputs handed to `take` (which keep()s what must outlive the scope).
function eachChunk(
  engine: Engine,
  rows: number,
  chunk: number,
  inputs: readonly Tensor[],
  fn: (views: Tensor[], start: number, count: number) => Tensor[],
  take: (parts: Tensor[], start: number, count: number) => void,
): void {
  for (let start = 0; start < rows; start += chunk) {
    const count = Math.min(chunk, rows - start);
    engine.scope(() => {
      take(
        fn(
          inputs.map((t) => rowView(t, start, count)),
          start,
          count,
        ),
        start,
        count,
      );
    });
  }
}

/**
 * Run `fn` on views of row ranges of `inputs` (all with `rows` rows along dim 0) and stack
 * its outputs (each `count` rows) along dim 0. `outRowBytes` are the bytes per row of each
 * output, so the chunk also fits the outputs' bindings; `extraRowBytes` covers any other
 * per-row buffer fn makes and binds. With everything fitting, fn runs once on the tensors themselves.
 */
export function mapRows(
  engine: Engine,
  what: string,
  rows: number,
  inputs: readonly Tensor[],
  outRowBytes: readonly number[],
  fn: (views: Tensor[], start: number, count: number) => Tensor[],
  extraRowBytes: readonly number[] = [],
): Tensor[] {
  const chunk = chunkRows(engine, what, rows, inputs.map(rowBytes), [...outRowBytes, ...extraRowBytes]);
  if (chunk >= rows) return fn([...inputs], 0, rows);
  let outs: Tensor[] | null = null;
  eachChunk(engine, rows, chunk, inputs, fn, (parts, start, count) => {
    outs ??= parts.map((p) => engine.keep(engine.empty([rows, ...p.shape.slice(1)], p.dtype)));
    parts.forEach((p, i) => engine.copyInto(outs![i], (start * p.size) / count, p));
  });
  // Back under the caller's scope (keep() took them out of every scope).
  return outs!.map((t) => engine.adopt(t));
}

/**
 * Run `fn` on views of row ranges and sum its outputs (gradients of weights shared by all
 * rows, e.g. conv2d dW over the batch); with everything fitting, fn runs once.
 */
export function sumOverRows(
  engine: Engine,
  what: string,
  rows: number,
  inputs: readonly Tensor[],
  fn: (views: Tensor[], start: number, count: number) => Tensor[],
  extraRowBytes: readonly number[] = [],
): Tensor[] {
  const chunk = chunkRows(engine, what, rows, inputs.map(rowBytes), extraRowBytes);
  if (chunk >= rows) return fn([...inputs], 0, rows);
  let sums: Tensor[] | null = null;
  eachChunk(engine, rows, chunk, inputs, fn, (parts) => {
    if (!sums) sums = parts.map((p) => engine.keep(engine.copy(p)));
    else parts.forEach((p, i) => engine.accumulate(sums![i], p));
  });
  return sums!.map((t) => engine.adopt(t));
}

/**
 * Call fn with views of consecutive row ranges of every tensor (each holds `rows` equal rows;
 * a view of a tensor whose leading dimension is `rows` keeps its trailing shape, others are
 * flat), each range fitting the binding limit. Outputs among the tensors are written in
 * place through their views. With everything fitting, fn gets the tensors themselves.
 */
export function forEachRowRange(
  engine: Engine,
  what: string,
  rows: number,
  tensors: readonly Tensor[],
  fn: (views: Tensor[], count: number, start: number) => void,
): void {
  const per = tensors.map((t) => t.size / rows);
  const chunk = chunkRows(
    engine,
    what,
    rows,
    tensors.map((t, i) => per[i] * bytesPerElement(t.dtype)),
  );
  if (chunk >= rows) {
    fn([...tensors], rows, 0);
    return;
  }
  for (let start = 0; start < rows; start += chunk) {
    const count = Math.min(chunk, rows - start);
    engine.scope(() => {
      const views = tensors.map((t, i) =>
        engine.view(t, start * per[i], t.shape[0] === rows ? [count, ...t.shape.slice(1)] : [count * per[i]]),
      );
      fn(views, count, start);
    });
  }
}
