// WGSL sums over axes and their backward (a broadcast), and their dispatch (no autograd
// here: see reduce.ts). Every reduction runs as steps (outer, r, inner) → (outer, inner)
// from reduce-plan.ts. A step with inner = 1 sums contiguous rows; otherwise it sums
// strided columns. Long reductions are split into chunks whose partial sums a second
// pass adds, so even 1e6 elements → 1 takes two dispatches with many workgroups each.
import type { Engine } from '../../engine/engine.ts';
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import { defineKernel, f32, grid, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { broadcastLayout, broadcastParams, WGSL_BROADCAST } from '../binary/broadcast.ts';
import { axesReducedTo, normalizeAxes, planReduction, reducedShape, type ReduceStep } from './reduce-plan.ts';
import { elementwiseMain } from '../elementwise-main.ts';

const WG = 256;
/** Columns kernel: 32 adjacent columns (coalesced reads) × 8 lanes along the reduced axis. */
const COLS = 32;
const LANES = WG / COLS;
/** Elements per workgroup before a row is split into chunks (16 per invocation). */
const ROW_CHUNK = 4096;
/** Rows per workgroup before columns are split into chunks (16 per lane). */
const COLUMN_CHUNK = 128;
/** At most this many chunks, so that the second pass is one workgroup per output. */
const MAX_CHUNKS = 256;
/** Stop splitting once a pass has about this many workgroups: more only adds a pass. */
const TARGET_WORKGROUPS = 1024;

// x: (outer, r) → y: (outer, chunks), partial sums of contiguous chunks of each row
const rowsKernel = defineKernel({
  name: 'reduce_rows',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { outer: u32, r: u32, chunks: u32, chunkLen: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> partial: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = flatWorkgroup(wid, nwg);
  let row = w / p.chunks;
  if (row >= p.outer) { return; }
  let start = (w % p.chunks) * p.chunkLen;
  let end = min(start + p.chunkLen, p.r);
  let base = row * p.r;
  // Neighbouring invocations read neighbouring elements on every iteration.
  var acc = 0.0;
  for (var j = start + lid; j < end; j += ${WG}u) { acc += x[base + j]; }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[w] = partial[0] * p.scale; }
}`,
});

// x: (outer, r, inner) → y: (outer, chunks, inner), partial sums over chunks of r
const columnsKernel = defineKernel({
  name: 'reduce_columns',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32, chunks: u32, chunkLen: u32, colTiles: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> partial: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = flatWorkgroup(wid, nwg);
  let chunk = w % p.chunks;
  let tile = (w / p.chunks) % p.colTiles;
  let o = w / (p.chunks * p.colTiles);
  if (o >= p.outer) { return; }
  let col = lid % ${COLS}u;
  let lane = lid / ${COLS}u;
  let k = tile * ${COLS}u + col;
  let start = chunk * p.chunkLen;
  let end = min(start + p.chunkLen, p.r);
  var acc = 0.0;
  if (k < p.inner) {
    for (var j = start + lane; j < end; j += ${LANES}u) { acc += x[(o * p.r + j) * p.inner + k]; }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${LANES / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) { partial[lid] += partial[lid + s * ${COLS}u]; }
    workgroupBarrier();
  }
  if (lane == 0u && k < p.inner) { y[(o * p.chunks + chunk) * p.inner + k] = partial[col] * p.scale; }
}`,
});

// x: (outer, r, inner) → y: (outer, inner); one invocation per output, a plain loop.
// The second reference for the two kernels above.
const naiveKernel = defineKernel({
  name: 'reduce_naive',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i >= p.outer * p.inner) { return; }
  let o = i / p.inner;
  let k = i % p.inner;
  var acc = 0.0;
  for (var j = 0u; j < p.r; j++) { acc += x[(o * p.r + j) * p.inner + k]; }
  y[i] = acc * p.scale;
}`,
});

// x: a shape that broadcasts to y's → y = s · x broadcast (the backward of a sum)
const expandKernel = defineKernel({
  name: 'reduce_expand',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_BROADCAST}
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i < p.n) { y[i] = p.s * x[broadcastOffsets(i).x]; }
}`,
});

const chunkCount = (r: number, perChunk: number, workgroups: number) =>
  Math.max(1, Math.min(Math.ceil(r / perChunk), MAX_CHUNKS, Math.floor(TARGET_WORKGROUPS / workgroups)));

// One pass: x: (outer, r, inner) → y: (outer, chunks, inner)
function pass(engine: Engine, x: Tensor, y: Tensor, step: ReduceStep, chunks: number, scale: number): void {
  const { outer, r, inner } = step;
  const chunkLen = Math.ceil(r / chunks);
  if (inner === 1) {
    engine.dispatch(rowsKernel, [x, y], grid(outer * chunks), [
      u32(outer),
      u32(r),
      u32(chunks),
      u32(chunkLen),
      f32(scale),
    ]);
  } else {
    const colTiles = Math.ceil(inner / COLS);
    const params = [u32(outer), u32(r), u32(inner), u32(chunks), u32(chunkLen), u32(colTiles), f32(scale)];
    engine.dispatch(columnsKernel, [x, y], grid(outer * colTiles * chunks), params);
  }
}

// x: (outer, r, inner) → y: (outer, inner), in one pass or two
function tunedStep(engine: Engine, x: Tensor, y: Tensor, step: ReduceStep, scale: number): void {
  const { outer, inner } = step;
  const chunks =
    inner === 1
      ? chunkCount(step.r, ROW_CHUNK, outer)
      : chunkCount(step.r, COLUMN_CHUNK, outer * Math.ceil(inner / COLS));
  // Rounding the chunk length up may leave fewer chunks than asked for; one needs no second pass.
  const used = Math.ceil(step.r / Math.ceil(step.r / chunks));
  if (used === 1) return pass(engine, x, y, step, 1, scale);
  const partials = engine.empty([outer * used * inner]);
  pass(engine, x, partials, step, used, 1);
  pass(engine, partials, y, { outer, r: used, inner }, 1, scale);
  partials.dispose();
}

// x: (outer, r, inner) → y: (outer, inner)
function naiveStep(engine: Engine, x: Tensor, y: Tensor, step: ReduceStep, scale: number): void {
  const { outer, r, inner } = step;
  engine.dispatch(naiveKernel, [x, y], grid1d(outer * inner, ELEMENTWISE_WG), [
    u32(outer),
    u32(r),
    u32(inner),
    f32(scale),
  ]);
}

type StepFn = typeof tunedStep;

// x: (any) → y: `outShape`, after summing what `steps` say; scale applies once, at the end.
function runSteps(
  engine: Engine,
  x: Tensor,
  steps: ReduceStep[],
  outShape: number[],
  scale: number,
  step: StepFn,
): Tensor {
  if (x.dtype !== 'f32') throw new Error(`reduce: f32 only, got ${x}`);
  // Nothing to sum (no axes, or only size-1 axes): one pass copies and scales.
  const all = steps.length ? steps : [{ outer: 1, r: 1, inner: x.size }];
  let current = x;
  all.forEach((s, i) => {
    const last = i === all.length - 1;
    const next = last ? engine.empty(outShape) : engine.empty([s.outer * s.inner]);
    step(engine, current, next, s, last ? scale : 1);
    if (current !== x) current.dispose();
    current = next;
  });
  return current;
}

// x: shape → y: `axes` summed (all when undefined), removed or kept as 1s; y = scale · Σ
export function sumForward(engine: Engine, x: Tensor, axes?: readonly number[], keepDims = false, scale = 1): Tensor {
  const ax = normalizeAxes(x.rank, axes);
  const out = reducedShape(x.shape, ax, keepDims);
  return (
    splitAxis0(engine, 'sum', x, ax.includes(0), out, (xs) => sumForward(engine, xs, ax, keepDims, scale)) ??
    runSteps(engine, x, planReduction(x.shape, ax), out, scale, tunedStep)
  );
}

/**
 * For x above the binding limit: `part` on ranges of x's leading axis, summed when that
 * axis is reduced, else stacked (copied into place) along the output's leading axis; null
 * when x fits whole. A single row above the limit is an error (BindingLimitError).
 */
function splitAxis0(
  engine: Engine,
  what: string,
  x: Tensor,
  reduced: boolean,
  outShape: readonly number[],
  part: (xs: Tensor, n: number) => Tensor,
): Tensor | null {
  if (x.rank === 0 || x.byteLength <= engine.maxBindingBytes) return null;
  const rows = x.shape[0];
  const chunk = chunkRows(engine, `${what} (${x})`, rows, [(x.size / rows) * 4]);
  if (chunk >= rows) return null; // one row fits: chunkRows would have thrown otherwise
  const y = reduced ? engine.zeros(outShape) : engine.empty(outShape);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    engine.scope(() => {
      const p = engine.noGrad(() => part(engine.view(x, (r0 * x.size) / rows, [n, ...x.shape.slice(1)]), n));
      if (reduced) engine.accumulate(y, p);
      else engine.copyInto(y, (r0 * y.size) / rows, p);
    });
  }
  return y;
}

/** sumForward with the one-invocation-per-output kernel (a second reference for tests). */
export function sumForwardNaive(
  engine: Engine,
  x: Tensor,
  axes?: readonly number[],
  keepDims = false,
  scale = 1,
): Tensor {
  const ax = normalizeAxes(x.rank, axes);
  return runSteps(engine, x, planReduction(x.shape, ax), reducedShape(x.shape, ax, keepDims), scale, naiveStep);
}

// x: shape → y: `shape`, summing the axes along which `shape` broadcasts to x's (binary backward)
export function reduceToShape(engine: Engine, x: Tensor, shape: readonly number[], scale = 1): Tensor {
  const axes = axesReducedTo(x.shape, shape);
  const reduced = axes.includes(0);
  return (
    splitAxis0(engine, 'reduce', x, reduced, shape, (xs, n) =>
      reduceToShape(engine, xs, reduced ? shape : [n, ...shape.slice(1)], scale),
    ) ?? runSteps(engine, x, planReduction(x.shape, axes), [...shape], scale, tunedStep)
  );
}

// dY: x's shape with `axes` summed (kept or not) → dX: xShape, dX = scale · dY broadcast
export function sumBackward(
  engine: Engine,
  dY: Tensor,
  xShape: readonly number[],
  axes?: readonly number[],
  scale = 1,
): Tensor {
  const ax = normalizeAxes(xShape.length, axes);
  const keptShape = reducedShape(xShape, ax, true);
  const dX = engine.empty(xShape);
  const expand = (dYs: Tensor, dXs: Tensor, shape: readonly number[], kept: readonly number[]) => {
    const layout = broadcastLayout(shape, [kept]);
    engine.dispatch(
      expandKernel,
      [dYs, dXs],
      grid1d(dXs.size, ELEMENTWISE_WG),
      broadcastParams(dXs.size, layout, scale),
    );
  };
  const rows = xShape[0] ?? 1;
  if (dX.byteLength <= engine.maxBindingBytes || xShape.length === 0) {
    expand(dY, dX, xShape, keptShape);
    return dX;
  }
  // dX above the binding limit: ranges of its leading axis; dY is shared when that axis is
  // summed, else its matching rows go along.
  const summed = ax.includes(0);
  const per = dX.size / rows;
  const perY = summed ? 0 : dY.size / rows;
  // dY's (smaller) rows are copied out, needing no aligned offsets.
  const chunk = chunkRows(engine, `sum backward (${dX})`, rows, [per * 4], [perY * 4]);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    engine.scope(() => {
      const shape = [n, ...xShape.slice(1)];
      const kept = summed ? keptShape : [n, ...keptShape.slice(1)];
      let dYs = dY;
      if (!summed) {
        dYs = engine.empty(kept);
        engine.copyInto(dYs, 0, dY, r0 * perY, n * perY);
      }
      expand(dYs, engine.view(dX, r0 * per, shape), shape, kept);
    });
  }
  return dX;
}

export const reduceKernels: KernelDef[] = [rowsKernel, columnsKernel, naiveKernel, expandKernel];
