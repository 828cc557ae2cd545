// WGSL axis permutation and its dispatch (no autograd here: see transpose.ts; the backward
// is the same kernel with the inverse permutation).
//
// Every permutation is first brought to a canonical 4-D form: size-1 axes dropped, input axes
// that stay adjacent and in order merged ((B, C, H, W) → (B, H, W, C) is (B, C, HW) → (B, HW, C)),
// leading 1s added. Then
// - naive: one invocation per output element, reading through the permuted input strides;
//   fine when the innermost input axis stays innermost (reads and writes both contiguous);
// - tiled: when the innermost axis moves, 32×32 tiles through workgroup memory, so that both
//   the reads (along the input's last axis) and the writes (along the output's) are contiguous.
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, grid1d, u32, WGSL_FLAT_INDEX, type Param } from '../../engine/kernel.ts';
import { forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';

const NAIVE_WG = 256;
const T = 32; // tile edge
const ROWS = 8; // tile rows per pass: T × ROWS invocations
const TILED_WG = T * ROWS;

// shape: output shape; inStride[d]: input stride of the axis output axis d reads;
// tile = output axis fed by the input's last axis, b0 < b1 the two other (batch) axes.
const PARAMS = /* wgsl */ `
struct Params {
  shape: vec4u,
  inStride: vec4u,
  n: u32, tile: u32, b0: u32, b1: u32,
  tilesA: u32, tiles3: u32,
}
fn outStride() -> vec4u {
  return vec4u(p.shape.y * p.shape.z * p.shape.w, p.shape.z * p.shape.w, p.shape.w, 1u);
}`;

const naiveKernel = defineKernel({
  name: 'transpose_naive',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `${PARAMS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${NAIVE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${NAIVE_WG}u);
  if (i >= p.n) { return; }
  let s = outStride();
  let idx = vec4u(i / s.x, (i / s.y) % p.shape.y, (i / s.z) % p.shape.z, i % p.shape.w);
  y[i] = x[dot(idx, p.inStride)];
}`,
});

const tiledKernel = defineKernel({
  name: 'transpose_tiled',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `${PARAMS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
// One padding column so that reading a tile column does not hit one memory bank 32 times.
var<workgroup> tile: array<f32, ${T * (T + 1)}>;
@compute @workgroup_size(${TILED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  // Workgroups enumerate (batch b0, batch b1, tile along axis 'tile', tile along axis 3).
  let w = flatWorkgroup(wid, nwg);
  let t3 = w % p.tiles3;
  let tA = (w / p.tiles3) % p.tilesA;
  let batch = w / (p.tiles3 * p.tilesA);
  var idx = vec4u();
  idx[p.b1] = batch % p.shape[p.b1];
  idx[p.b0] = batch / p.shape[p.b1];
  let inBatch = idx[p.b0] < p.shape[p.b0];
  let tx = lid % ${T}u;
  let ty = lid / ${T}u;
  // Read: neighbouring invocations walk output axis 'tile' = the input's contiguous last axis.
  for (var j = 0u; j < ${T}u; j += ${ROWS}u) {
    idx[p.tile] = tA * ${T}u + tx;
    idx.w = t3 * ${T}u + ty + j;
    if (inBatch && idx[p.tile] < p.shape[p.tile] && idx.w < p.shape.w) {
      tile[(ty + j) * ${T + 1}u + tx] = x[dot(idx, p.inStride)];
    }
  }
  workgroupBarrier();
  // Write: neighbouring invocations walk output axis 3, the output's contiguous axis.
  let s = outStride();
  for (var j = 0u; j < ${T}u; j += ${ROWS}u) {
    idx[p.tile] = tA * ${T}u + ty + j;
    idx.w = t3 * ${T}u + tx;
    if (inBatch && idx[p.tile] < p.shape[p.tile] && idx.w < p.shape.w) {
      y[dot(idx, s)] = tile[tx * ${T + 1}u + ty + j];
    }
  }
}`,
});

/** A permutation as (input shape, perm) of rank ≤ 4 with no size-1 axes and no mergeable runs. */
export interface CanonicalPermutation {
  shape: number[];
  perm: number[];
}

/** Drop size-1 axes and merge input axes that stay adjacent and in order. */
export function canonicalPermutation(shape: readonly number[], perm: readonly number[]): CanonicalPermutation {
  const keep = shape.map((d) => d !== 1);
  const renumber: number[] = [];
  shape.forEach((_, i) => (renumber[i] = keep.slice(0, i).filter(Boolean).length));
  const s = shape.filter((_, i) => keep[i]);
  const pr = perm.filter((d) => keep[d]).map((d) => renumber[d]);
  // Runs of consecutive input axes in output order.
  const runs: number[][] = [];
  for (const d of pr) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] + 1 === d) last.push(d);
    else runs.push([d]);
  }
  const byInput = [...runs].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((run) => run.reduce((a, d) => a * s[d], 1)),
    perm: runs.map((run) => byInput.indexOf(run)),
  };
}

export function checkPermutation(perm: readonly number[], rank: number): void {
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((d) => !Number.isInteger(d) || d < 0 || d >= rank)) {
    throw new Error(`transpose: [${perm.join(',')}] is not a permutation of ${rank} axes`);
  }
}

export const inversePermutation = (perm: readonly number[]): number[] => {
  const inv: number[] = [];
  perm.forEach((d, k) => (inv[d] = k));
  return inv;
};

export type TransposeImpl = 'auto' | 'naive';

function canonicalForm(x: Tensor, perm: readonly number[]): CanonicalPermutation {
  const c = canonicalPermutation(x.shape, perm);
  if (c.shape.length > 4) throw new Error(`transpose: [${perm.join(',')}] of ${x} needs more than 4 axes`);
  return c;
}

const outShapeOf = (x: Tensor, perm: readonly number[]): number[] => perm.map((d) => x.shape[d]);

// x: shape → y: perm.map(d => shape[d]) (rank ≤ 4 after merging axes that move together),
// in x's dtype: fp16 tensors are moved by the same kernels, stored as f16 by the engine's
// half-storage rewrite (the workgroup tile stays f32, which holds every f16 exactly).
export function transposeForward(
  engine: Engine,
  x: Tensor,
  perm: readonly number[],
  impl: TransposeImpl = 'auto',
): Tensor {
  if (x.dtype === 'f16' && !engine.f16) throw new Error(`transpose: fp16 ${x} needs an adapter with shader-f16`);
  checkPermutation(perm, x.rank);
  canonicalForm(x, perm); // refuses what the kernels cannot do before anything is allocated
  const y = engine.empty(outShapeOf(x, perm), x.dtype);
  if (perm[0] === 0 && x.rank > 1 && x.shape[0] > 1 && x.byteLength > engine.maxBindingBytes) {
    // Above the binding limit with the leading axis in place ((B, C, HW) ↔ (B, HW, C) over a
    // big batch): each range of it transposes on its own, straight into its range of y (no
    // copy, which for fp16 could not start or end on an odd element).
    forEachRowRange(engine, `transpose (${x})`, x.shape[0], [x, y], ([xs, ys]) =>
      transposeInto(engine, xs, perm, impl, ys),
    );
  } else transposeInto(engine, x, perm, impl, y);
  return y;
}

// x → y (of the permuted shape and x's dtype, possibly a view), both within the binding limit.
function transposeInto(engine: Engine, x: Tensor, perm: readonly number[], impl: TransposeImpl, y: Tensor): void {
  const c = canonicalForm(x, perm);
  // Pad to 4-D with leading size-1 axes.
  const pad = 4 - c.shape.length;
  const inShape = [...new Array<number>(pad).fill(1), ...c.shape];
  const p4 = [...Array.from({ length: pad }, (_, i) => i), ...c.perm.map((d) => d + pad)];
  const inStrides = [inShape[1] * inShape[2] * inShape[3], inShape[2] * inShape[3], inShape[3], 1];
  const outShape = p4.map((d) => inShape[d]);
  const vec = (v: number[]): Param[] => v.map(u32);
  const tileAxis = p4.indexOf(3);
  if (impl === 'naive' || tileAxis === 3) {
    const params = [
      ...vec(outShape),
      ...vec(p4.map((d) => inStrides[d])),
      u32(x.size),
      u32(0),
      u32(0),
      u32(0),
      u32(0),
      u32(0),
    ];
    engine.dispatch(naiveKernel, [x, y], grid1d(x.size, NAIVE_WG), params);
    return;
  }
  const [b0, b1] = [0, 1, 2].filter((d) => d !== tileAxis);
  const tilesA = Math.ceil(outShape[tileAxis] / T);
  const tiles3 = Math.ceil(outShape[3] / T);
  const params = [
    ...vec(outShape),
    ...vec(p4.map((d) => inStrides[d])),
    u32(x.size), u32(tileAxis), u32(b0), u32(b1),
    u32(tilesA), u32(tiles3),
  ]; // prettier-ignore
  engine.dispatch(tiledKernel, [x, y], grid(outShape[b0] * outShape[b1] * tilesA * tiles3), params);
}

// dY: perm.map(d => xShape[d]) → dX: xShape
export function transposeBackward(
  engine: Engine,
  dY: Tensor,
  perm: readonly number[],
  impl: TransposeImpl = 'auto',
): Tensor {
  return transposeForward(engine, dY, inversePermutation(perm), impl);
}

export const transposeKernels = [naiveKernel, tiledKernel];
