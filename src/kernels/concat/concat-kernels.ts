// WGSL for concat and slice, and their dispatch (no autograd here: see concat.ts, slice.ts).
// Both are the same data movement: viewed as (outer, axis·inner), every input of a concat and
// every slice is a run of `len` consecutive floats per outer row, at some offset in rows of
// another length. One strided row-copy kernel does it all: a concat (or the backward of a
// slice) is one copy per piece into the big array, its backward (or a slice) one copy out.
import { activationDtype } from '../../engine/activation-dtype.ts';
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import { bytesPerElement } from '../../engine/dtype.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { elementwiseMain } from '../elementwise-main.ts';

// dst[o·dstRow + dstOffset + j] = src[o·srcRow + srcOffset + j]   for o < n / len, j < len
const rowCopyKernel = defineKernel({
  name: 'row_copy',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, len: u32, srcRow: u32, srcOffset: u32, dstRow: u32, dstOffset: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i >= p.n) { return; }
  let o = i / p.len;
  let j = i % p.len;
  dst[o * p.dstRow + p.dstOffset + j] = src[o * p.srcRow + p.srcOffset + j];
}`,
});

interface RowCopy {
  outer: number;
  len: number;
  srcRow: number;
  srcOffset: number;
  dstRow: number;
  dstOffset: number;
}

/** Above this many rows, tensors over the binding limit use the kernel on row ranges instead of one buffer copy per row. */
const MAX_ROW_COPIES = 1024;

function dispatchRowCopy(engine: Engine, src: Tensor, dst: Tensor, c: RowCopy): void {
  const n = c.outer * c.len;
  engine.dispatch(rowCopyKernel, [src, dst], grid1d(n, ELEMENTWISE_WG), [
    u32(n), u32(c.len), u32(c.srcRow), u32(c.srcOffset), u32(c.dstRow), u32(c.dstOffset),
  ]); // prettier-ignore
}

function rowCopy(engine: Engine, src: Tensor, dst: Tensor, c: RowCopy): void {
  const limit = engine.maxBindingBytes;
  if (src.byteLength <= limit && dst.byteLength <= limit) return dispatchRowCopy(engine, src, dst, c);
  // Tensors above the binding limit (skip connections of 512 px VAE/UNet activations): each
  // row's run is contiguous, so a few long rows are buffer copies, which bind nothing —
  // where they are whole 4-byte words (always in fp32; in fp16 with even runs and offsets),
  // else the kernel copies the run through aligned windows (copyRun).
  const bpe = bytesPerElement(dst.dtype);
  const words = bpe === 4 || [c.len, c.srcRow, c.srcOffset, c.dstRow, c.dstOffset].every((v) => v % 2 === 0);
  if (c.outer <= MAX_ROW_COPIES) {
    for (let o = 0; o < c.outer; o++) {
      const [s, d] = [o * c.srcRow + c.srcOffset, o * c.dstRow + c.dstOffset];
      if (words) engine.copyInto(dst, d, src, s, c.len);
      else copyRun(engine, src, s, dst, d, c.len);
    }
    return;
  }
  // Many short rows: the kernel on aligned ranges of rows.
  const chunk = chunkRows(engine, `row_copy (${src} → ${dst})`, c.outer, [c.srcRow * bpe, c.dstRow * bpe]);
  for (let o = 0; o < c.outer; o += chunk) {
    const m = Math.min(chunk, c.outer - o);
    engine.scope(() =>
      dispatchRowCopy(
        engine,
        engine.view(src, o * c.srcRow, [m * c.srcRow]),
        engine.view(dst, o * c.dstRow, [m * c.dstRow]),
        {
          ...c,
          outer: m,
        },
      ),
    );
  }
}

// dst[d … d + len) = src[s … s + len) by the kernel, through views that start at the aligned
// offset at or before each end's start (the rest is the kernel's offset) and pieces that fit
// one binding: for fp16 runs that are not whole 4-byte words, which buffer copies need.
function copyRun(engine: Engine, src: Tensor, s: number, dst: Tensor, d: number, len: number): void {
  const bpe = bytesPerElement(dst.dtype);
  const unit = engine.bindingAlignment / bpe;
  const most = Math.floor(engine.maxBindingBytes / bpe) - unit;
  if (most < 1) throw new Error(`row_copy (${src} → ${dst}): the binding limit is below one aligned window`);
  for (let done = 0; done < len; done += most) {
    const n = Math.min(most, len - done);
    const s0 = Math.floor((s + done) / unit) * unit;
    const d0 = Math.floor((d + done) / unit) * unit;
    engine.scope(() =>
      dispatchRowCopy(engine, engine.view(src, s0, [s + done - s0 + n]), engine.view(dst, d0, [d + done - d0 + n]), {
        outer: 1,
        len: n,
        srcRow: 0,
        srcOffset: s + done - s0,
        dstRow: 0,
        dstOffset: d + done - d0,
      }),
    );
  }
}

/** Axis in [0, rank), accepting negative axes counted from the end. */
export function normalizeAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new Error(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

const prod = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function checkF32(what: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${t}`);
}

/** Output shape of a concat; throws unless the shapes agree off the axis. */
export function concatShape(shapes: readonly (readonly number[])[], axis: number): number[] {
  if (shapes.length === 0) throw new Error('concat: no tensors');
  const first = shapes[0];
  for (const s of shapes) {
    if (s.length !== first.length || s.some((d, k) => k !== axis && d !== first[k])) {
      throw new Error(`concat: [${s.join(',')}] does not match [${first.join(',')}] off axis ${axis}`);
    }
    if (prod(s) === 0) throw new Error(`concat: empty tensor [${s.join(',')}]`);
  }
  return first.map((d, k) => (k === axis ? shapes.reduce((a, s) => a + s[axis], 0) : d));
}

// xs[i]: (…, n_i, …) along axis → y: (…, Σ n_i, …), in their dtype (fp16 at inference:
// activationDtype)
export function concatForward(engine: Engine, xs: readonly Tensor[], axis: number): Tensor {
  const dtype = activationDtype('concat', ...xs);
  const a = normalizeAxis(axis, xs[0]?.rank ?? 0, 'concat');
  const shape = concatShape(
    xs.map((x) => x.shape),
    a,
  );
  const outer = prod(shape.slice(0, a));
  const inner = prod(shape.slice(a + 1));
  const y = engine.empty(shape, dtype);
  let offset = 0;
  for (const x of xs) {
    const len = x.shape[a] * inner;
    rowCopy(engine, x, y, {
      outer,
      len,
      srcRow: len,
      srcOffset: 0,
      dstRow: shape[a] * inner,
      dstOffset: offset * inner,
    });
    offset += x.shape[a];
  }
  return y;
}

// dY: (…, Σ n_i, …) → dX[i]: shapes[i] (null where `needed[i]` is false)
export function concatBackward(
  engine: Engine,
  dY: Tensor,
  shapes: readonly (readonly number[])[],
  axis: number,
  needed: readonly boolean[] = shapes.map(() => true),
): (Tensor | null)[] {
  checkF32('concat backward', dY);
  const a = normalizeAxis(axis, dY.rank, 'concat backward');
  const shape = concatShape(shapes, a);
  if (shape.join() !== dY.shape.join()) throw new Error(`concat backward: dY ${dY}, expected [${shape.join(',')}]`);
  const outer = prod(shape.slice(0, a));
  const inner = prod(shape.slice(a + 1));
  let offset = 0;
  return shapes.map((s, i) => {
    const start = offset;
    offset += s[a];
    if (!needed[i]) return null;
    const dX = engine.empty(s);
    const len = s[a] * inner;
    rowCopy(engine, dY, dX, {
      outer,
      len,
      srcRow: shape[a] * inner,
      srcOffset: start * inner,
      dstRow: len,
      dstOffset: 0,
    });
    return dX;
  });
}

function checkSlice(shape: readonly number[], axis: number, start: number, length: number): number {
  const a = normalizeAxis(axis, shape.length, 'slice');
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 1 || start + length > shape[a]) {
    throw new Error(`slice: [${start}, ${start + length}) out of range for [${shape.join(',')}] axis ${axis}`);
  }
  return a;
}

// x: (…, n, …) → y: (…, length, …), entries start … start + length − 1 along axis, in x's
// dtype (fp16 at inference: activationDtype)
export function sliceForward(engine: Engine, x: Tensor, axis: number, start: number, length: number): Tensor {
  const dtype = activationDtype('slice', x);
  const a = checkSlice(x.shape, axis, start, length);
  const inner = prod(x.shape.slice(a + 1));
  const y = engine.empty(
    x.shape.map((d, k) => (k === a ? length : d)),
    dtype,
  );
  const len = length * inner;
  const outer = prod(x.shape.slice(0, a));
  rowCopy(engine, x, y, {
    outer,
    len,
    srcRow: x.shape[a] * inner,
    srcOffset: start * inner,
    dstRow: len,
    dstOffset: 0,
  });
  return y;
}

// dY: (…, length, …) → dX: xShape, zero outside the slice
export function sliceBackward(
  engine: Engine,
  dY: Tensor,
  xShape: readonly number[],
  axis: number,
  start: number,
  length: number,
): Tensor {
  checkF32('slice backward', dY);
  const a = checkSlice(xShape, axis, start, length);
  const inner = prod(xShape.slice(a + 1));
  const dX = engine.zeros(xShape);
  const len = length * inner;
  const outer = prod(xShape.slice(0, a));
  rowCopy(engine, dY, dX, {
    outer,
    len,
    srcRow: len,
    srcOffset: 0,
    dstRow: xShape[a] * inner,
    dstOffset: start * inner,
  });
  return dX;
}

export const concatKernels = [rowCopyKernel];
