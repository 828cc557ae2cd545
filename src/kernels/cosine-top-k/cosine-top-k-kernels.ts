// WGSL cosine similarity (forward, backward) and per-row top-k selection, and their dispatch
// (no autograd here: see cosine-top-k.ts).
//
// Cosine similarity runs in two steps: row norms (one workgroup per row), then the
// normalised dot products. The tuned forward tiles 4 rows of `a` × 64 rows of `b` per
// workgroup through workgroup memory, so `b` (the 49408-row vocabulary in the real use) is
// read once per 4 rows of `a` with coalesced loads; the naive kernel (one invocation per
// output) stays beside it as a second reference.
//
// Top-k needs no backward: it selects, and a selection has no useful derivative (the
// values it returns could be differentiated by gathering S at the indices, but the model
// uses only the indices). It works in passes: each workgroup sorts a segment of SEG
// candidates in workgroup memory (bitonic network, order = value descending, then index
// ascending, so ties go to the lower index deterministically) and keeps its first k; the
// next pass merges those lists SEG candidates at a time until one list per row remains.
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import { chunkRows, mapRows, rowView } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { uploadWords } from '../embedding/embedding-kernels.ts';
import { COSINE_EPS } from './cosine-top-k-reference.ts';

const ELEMENT_WG = 256;
const NORM_WG = 64;
const TILE_M = 4;
const TILE_N = 64; // = workgroup size of the tiled forward: one column of the tile per invocation
const TILE_K = 32;

const EPS = /* wgsl */ `const EPS: f32 = ${COSINE_EPS};`;

// x: (R, C) → n: (R), the plain (unclamped) L2 norms; the kernels below clamp.
const normsKernel = defineKernel({
  name: 'cosine_row_norms',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { rows: u32, C: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> n: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> partial: array<f32, ${NORM_WG}>;
@compute @workgroup_size(${NORM_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let r = flatWorkgroup(wid, nwg);
  if (r >= p.rows) { return; } // uniform per workgroup
  var acc = 0.0;
  for (var c = lid; c < p.C; c += ${NORM_WG}u) {
    let v = x[r * p.C + c];
    acc += v * v;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${NORM_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { n[r] = sqrt(partial[0]); }
}`,
});

const SIM_BINDINGS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> na: array<f32>;
@group(0) @binding(3) var<storage, read> nb: array<f32>;
@group(0) @binding(4) var<storage, read_write> S: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;`;

// a: (M, C), b: (N, C), na: (M), nb: (N) → S: (M, N)
const forwardNaiveKernel = defineKernel({
  name: 'cosine_forward_naive',
  storage: ['read', 'read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { M: u32, N: u32, C: u32 }
${SIM_BINDINGS}
${WGSL_FLAT_INDEX}
${EPS}
@compute @workgroup_size(${ELEMENT_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let t = flatIndex(wid, nwg, lid, ${ELEMENT_WG}u);
  if (t >= p.M * p.N) { return; }
  let i = t / p.N;
  let j = t - i * p.N;
  var dot = 0.0;
  for (var c = 0u; c < p.C; c++) { dot += a[i * p.C + c] * b[j * p.C + c]; }
  S[t] = dot / (max(na[i], EPS) * max(nb[j], EPS));
}`,
});

// a: (M, C), b: (N, C), na: (M), nb: (N) → S: (M, N); one workgroup per 4 × 64 tile of S.
const forwardTiledKernel = defineKernel({
  name: 'cosine_forward_tiled',
  storage: ['read', 'read', 'read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { M: u32, N: u32, C: u32, tilesN: u32 }
${SIM_BINDINGS}
${WGSL_FLAT_INDEX}
${EPS}
const TM = ${TILE_M}u;
const TN = ${TILE_N}u;
const TK = ${TILE_K}u;
// b's tile stored k-major so the compute loop reads consecutive words across invocations;
// the +1 padding keeps the transposing stores free of bank conflicts.
var<workgroup> bTile: array<f32, ${TILE_K * (TILE_N + 1)}>;
var<workgroup> aTile: array<f32, ${TILE_M * TILE_K}>;
@compute @workgroup_size(${TILE_N})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let tile = flatWorkgroup(wid, nwg);
  let tm = tile / p.tilesN;
  let i0 = tm * TM;
  let j0 = (tile - tm * p.tilesN) * TN;
  if (i0 >= p.M) { return; } // uniform per workgroup
  var acc = vec4f(0.0);
  for (var k0 = 0u; k0 < p.C; k0 += TK) {
    // Consecutive invocations load consecutive channels of one row (coalesced).
    for (var s = 0u; s < TK; s++) {
      let e = lid + s * TN;
      let r = e / TK;
      let kk = e - r * TK;
      var v = 0.0;
      if (j0 + r < p.N && k0 + kk < p.C) { v = b[(j0 + r) * p.C + k0 + kk]; }
      bTile[kk * (TN + 1u) + r] = v;
    }
    for (var e = lid; e < TM * TK; e += TN) {
      let r = e / TK;
      let kk = e - r * TK;
      var v = 0.0;
      if (i0 + r < p.M && k0 + kk < p.C) { v = a[(i0 + r) * p.C + k0 + kk]; }
      aTile[e] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = bTile[kk * (TN + 1u) + lid];
      acc += vec4f(aTile[kk], aTile[TK + kk], aTile[2u * TK + kk], aTile[3u * TK + kk]) * bv;
    }
    workgroupBarrier();
  }
  let j = j0 + lid;
  if (j >= p.N) { return; }
  let hb = max(nb[j], EPS);
  for (var r = 0u; r < TM; r++) {
    if (i0 + r < p.M) { S[(i0 + r) * p.N + j] = acc[r] / (max(na[i0 + r], EPS) * hb); }
  }
}`,
});

// One kernel per side. For side x ∈ {a, b} with other side y, per row r of x and channel c:
//   dX[r, c] = (1/n̂x_r)·Σ_o dS·y_o[c]/n̂y_o − [‖x_r‖ > eps]·x_r[c]/n̂x_r²·Σ_o dS·S
// where (r, o) indexes S as (i, j) for side a and as (j, i) for side b. One invocation per
// (r, c): consecutive invocations read consecutive channels of y_o (coalesced), and each
// output is summed in a fixed order (no atomics).
const backwardKernel = (side: 'a' | 'b'): KernelDef =>
  defineKernel({
    name: `cosine_backward_${side}`,
    storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { X: u32, Y: u32, C: u32, N: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> nx: array<f32>;
@group(0) @binding(3) var<storage, read> ny: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<f32>;
@group(0) @binding(5) var<storage, read> dS: array<f32>;
@group(0) @binding(6) var<storage, read_write> dX: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${EPS}
fn sIndex(r: u32, o: u32) -> u32 { return ${side === 'a' ? 'r * p.N + o' : 'o * p.N + r'}; }
@compute @workgroup_size(${ELEMENT_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let t = flatIndex(wid, nwg, lid, ${ELEMENT_WG}u);
  if (t >= p.X * p.C) { return; }
  let r = t / p.C;
  let c = t - r * p.C;
  var g = 0.0;
  var q = 0.0;
  for (var o = 0u; o < p.Y; o++) {
    let s = sIndex(r, o);
    let d = dS[s];
    g += d * y[o * p.C + c] / max(ny[o], EPS);
    q += d * S[s];
  }
  let hx = max(nx[r], EPS);
  var out = g / hx;
  if (nx[r] > EPS) { out -= q * x[t] / (hx * hx); }
  dX[t] = out;
}`,
  });

const backwardAKernel = backwardKernel('a');
const backwardBKernel = backwardKernel('b');

function checkMatrix(x: Tensor, what: string): [number, number] {
  if (x.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${x}`);
  if (x.rank !== 2) throw new Error(`${what}: expected a matrix (rows, C), got [${x.shape.join(',')}]`);
  return [x.shape[0], x.shape[1]];
}

/** [M, N, C] of a: (M, C) and b: (N, C); throws on other shapes or dtypes. */
export function cosineShapes(a: Tensor, b: Tensor): [number, number, number] {
  const [M, C] = checkMatrix(a, 'cosine similarity');
  const [N, Cb] = checkMatrix(b, 'cosine similarity');
  if (C !== Cb) throw new Error(`cosine similarity: ${a} and ${b} differ in channels`);
  return [M, N, C];
}

// x: (R, C) → n: (R), unclamped L2 norm of each row
export function rowNorms(engine: Engine, x: Tensor): Tensor {
  const [R, C] = checkMatrix(x, 'row norms');
  // A table above the binding limit (the 49408-row vocabulary) goes in row ranges.
  const [n] = mapRows(engine, `cosine_row_norms ([${R},${C}])`, R, [x], [4], ([xs], _start, rows) => {
    const part = engine.empty([rows]);
    engine.dispatch(normsKernel, [xs, part], grid(rows), [u32(rows), u32(C)]);
    return [part];
  });
  return n;
}

// Columns [n0, n0 + w) of src: (M, N) into columns [d0, d0 + w) of dst: (M, dN), one buffer
// copy per row (one in all when both are single rows).
function copyColumns(
  engine: Engine,
  src: Tensor,
  N: number,
  n0: number,
  dst: Tensor,
  dN: number,
  d0: number,
  w: number,
) {
  const M = src.size / N;
  for (let m = 0; m < M; m++) engine.copyInto(dst, m * dN + d0, src, m * N + n0, w);
}

/**
 * Columns of b per chunk so that b's rows, and the (M, w) blocks of S the chunk uses, fit
 * the binding limit; N when everything fits at once.
 */
function bChunk(engine: Engine, M: number, N: number, C: number, what: string): number {
  return chunkRows(engine, `${what} (a [${M},${C}], b [${N},${C}])`, N, [C * 4, 4], [M * 4]);
}

export interface CosineForwardOptions {
  /** Use the one-invocation-per-output kernel instead of the tiled one (tests, benchmarks). */
  naive?: boolean;
}

// a: (M, C), b: (N, C), na: (M), nb: (N) from rowNorms → S: (M, N)
export function cosineSimilarityForward(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  na: Tensor,
  nb: Tensor,
  options: CosineForwardOptions = {},
): Tensor {
  const [M, N, C] = cosineShapes(a, b);
  const chunk = bChunk(engine, M, N, C, 'cosine similarity');
  if (chunk < N) {
    // b (the vocabulary) in row ranges: S in column blocks, copied into place.
    const S = engine.empty([M, N]);
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const w = Math.min(chunk, N - n0);
      engine.scope(() => {
        const part = cosineSimilarityForward(engine, a, rowView(b, n0, w), na, engine.view(nb, n0, [w]), options);
        copyColumns(engine, part, w, 0, S, N, n0, w);
      });
    }
    return S;
  }
  const S = engine.empty([M, N]);
  if (options.naive) {
    engine.dispatch(forwardNaiveKernel, [a, b, na, nb, S], grid(Math.ceil((M * N) / ELEMENT_WG)), [
      u32(M),
      u32(N),
      u32(C),
    ]);
  } else {
    const tilesN = Math.ceil(N / TILE_N);
    engine.dispatch(forwardTiledKernel, [a, b, na, nb, S], grid(Math.ceil(M / TILE_M) * tilesN), [
      u32(M),
      u32(N),
      u32(C),
      u32(tilesN),
    ]);
  }
  return S;
}

// a: (M, C), b: (N, C), na: (M), nb: (N), S, dS: (M, N) → [dA: (M, C) | null, dB: (N, C) | null]
export function cosineSimilarityBackward(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  na: Tensor,
  nb: Tensor,
  S: Tensor,
  dS: Tensor,
  needs: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  const [M, N, C] = cosineShapes(a, b);
  if (dS.dtype !== 'f32' || dS.size !== M * N) throw new Error(`cosine similarity backward: ${dS} for (${M}, ${N})`);
  const chunk = bChunk(engine, M, N, C, 'cosine similarity backward');
  if (chunk < N) {
    // b in row ranges: dA sums over them, dB's rows are copied into place; each range
    // takes its column blocks of S and dS.
    const dA = needs[0] ? engine.zeros([M, C]) : null;
    const dB = needs[1] ? engine.empty([N, C]) : null;
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const w = Math.min(chunk, N - n0);
      engine.scope(() => {
        const block = (x: Tensor) => {
          const out = engine.empty([M, w]);
          copyColumns(engine, x, N, n0, out, w, 0, w);
          return out;
        };
        const [pa, pb] = cosineSimilarityBackward(
          engine,
          a,
          rowView(b, n0, w),
          na,
          engine.view(nb, n0, [w]),
          block(S),
          block(dS),
          needs,
        );
        if (pa && dA) engine.accumulate(dA, pa);
        if (pb && dB) engine.copyInto(dB, n0 * C, pb);
      });
    }
    return [dA, dB];
  }
  const side = (kernel: KernelDef, x: Tensor, y: Tensor, nx: Tensor, ny: Tensor, X: number, Y: number) => {
    const dX = engine.empty([X, C]);
    engine.dispatch(kernel, [x, y, nx, ny, S, dS, dX], grid(Math.ceil((X * C) / ELEMENT_WG)), [
      u32(X),
      u32(Y),
      u32(C),
      u32(N),
    ]);
    return dX;
  };
  return [
    needs[0] ? side(backwardAKernel, a, b, na, nb, M, N) : null,
    needs[1] ? side(backwardBKernel, b, a, nb, na, N, M) : null,
  ];
}

// ---------------------------------------------------------------- top-k

/** Candidates one workgroup sorts per pass (8 KiB of workgroup memory). */
export const TOPK_SEGMENT = 1024;

const SORT_ORDER = /* wgsl */ `
const INVALID = 0xffffffffu;
// Whether (va, ia) ranks before (vb, ib): valid before invalid, larger value first, then
// lower index. NaN scores have no defined order.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == INVALID || ib == INVALID) { return ia < ib; }
  if (va != vb) { return va > vb; }
  return ia < ib;
}`;

const topKCache = new Map<number, { select: KernelDef; merge: KernelDef }>();

function topKKernelPair(seg: number): { select: KernelDef; merge: KernelDef } {
  let pair = topKCache.get(seg);
  if (pair) return pair;
  if (!Number.isInteger(Math.log2(seg)) || seg < 2) throw new RangeError(`top-k: segment ${seg} is not a power of two`);
  const wg = Math.min(256, seg / 2);
  // Bitonic sorting network over the segment in workgroup memory, ranked by before().
  const sort = /* wgsl */ `
var<workgroup> vals: array<f32, ${seg}>;
var<workgroup> idx: array<u32, ${seg}>;
fn sortSegment(lid: u32) {
  for (var size = 2u; size <= ${seg}u; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var q = lid; q < ${seg / 2}u; q += ${wg}u) {
        let i = 2u * stride * (q / stride) + q % stride;
        let j = i + stride;
        let vi = vals[i];
        let ii = idx[i];
        let vj = vals[j];
        let ij = idx[j];
        // Blocks alternate direction until the last pass, which orders the whole segment.
        let swap = select(before(vi, ii, vj, ij), before(vj, ij, vi, ii), (i & size) == 0u);
        if (swap) {
          vals[i] = vj;
          idx[i] = ij;
          vals[j] = vi;
          idx[j] = ii;
        }
      }
      workgroupBarrier();
    }
  }
}`;
  // Each invocation loads entries e of its segment as (v, id), (0, INVALID) past the end.
  const entry = (load: string) => /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = flatWorkgroup(wid, nwg);
  if (w >= p.M * p.segs) { return; } // uniform per workgroup
  let row = w / p.segs;
  let seg = w - row * p.segs;
  for (var e = lid; e < ${seg}u; e += ${wg}u) {
    ${load}
    vals[e] = v;
    idx[e] = id;
  }
  workgroupBarrier();
  sortSegment(lid);
  for (var q = lid; q < p.k; q += ${wg}u) {
    outV[w * p.k + q] = vals[q];
    outI[w * p.k + q] = idx[q];
  }
}`;
  // Both kernels write (M, segs, k) candidates and sort in workgroup memory.
  const tail = /* wgsl */ `@group(0) @binding(2) var<storage, read_write> outV: array<f32>;
@group(0) @binding(3) var<storage, read_write> outI: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${SORT_ORDER}
${sort}`;
  // scores: (M, N), mask: ⌈N/32⌉ words (bit set = excluded) → (M, segs, k) candidate lists
  const select = defineKernel({
    name: `topk_select_${seg}`,
    storage: ['read', 'read', 'write', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { M: u32, N: u32, segs: u32, k: u32 }
@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
${tail}
${entry(`let col = seg * ${seg}u + e;
    var v = 0.0;
    var id = INVALID;
    if (col < p.N) {
      if ((mask[col >> 5u] & (1u << (col & 31u))) == 0u) {
        v = scores[row * p.N + col];
        id = col;
      }
    }`)}`,
  });
  // candidates: (M, T) values and indices → (M, segs, k)
  const merge = defineKernel({
    name: `topk_merge_${seg}`,
    storage: ['read', 'read', 'write', 'write'],
    uniforms: true,
    code: /* wgsl */ `
struct Params { M: u32, T: u32, segs: u32, k: u32 }
@group(0) @binding(0) var<storage, read> inV: array<f32>;
@group(0) @binding(1) var<storage, read> inI: array<u32>;
${tail}
${entry(`let pos = seg * ${seg}u + e;
    var v = 0.0;
    var id = INVALID;
    if (pos < p.T) {
      v = inV[row * p.T + pos];
      id = inI[row * p.T + pos];
    }`)}`,
  });
  pair = { select, merge };
  topKCache.set(seg, pair);
  return pair;
}

/** Excluded columns as a bitmask (bit j of word j/32), validated against N. */
function exclusionMask(exclude: Iterable<number>, N: number): { words: Uint32Array; count: number } {
  const words = new Uint32Array(Math.ceil(N / 32));
  let count = 0;
  for (const j of exclude) {
    if (!Number.isInteger(j) || j < 0 || j >= N) throw new RangeError(`top-k: excluded id ${j} is not in [0, ${N})`);
    const bit = 1 << (j & 31);
    if (!(words[j >>> 5] & bit)) count++;
    words[j >>> 5] |= bit;
  }
  return { words, count };
}

export interface TopKTensors {
  /** (M, k) scores, each row best first. */
  values: Tensor;
  /** (M, k) column indices as u32 bit patterns (dtype says f32: the engine has no integer dtype). */
  indices: Tensor;
}

// scores: (M, N) → values, indices: (M, k). `segment` (a power of two ≥ 2k) is for tests.
export function topKForward(
  engine: Engine,
  scores: Tensor,
  k: number,
  exclude: Iterable<number> = [],
  segment = TOPK_SEGMENT,
): TopKTensors {
  const [M, N] = checkMatrix(scores, 'top-k');
  // Many rows of scores beyond the binding limit: rows in ranges (each row is independent).
  const rowsAtOnce = chunkRows(engine, `top-k ([${M},${N}])`, M, [N * 4]);
  if (rowsAtOnce < M) {
    const excluded = [...exclude]; // read once per range
    const [values, indices] = mapRows(engine, `top-k ([${M},${N}])`, M, [scores], [k * 4, k * 4], ([part]) => {
      const r = topKForward(engine, part, k, excluded, segment);
      return [r.values, r.indices];
    });
    return { values, indices };
  }
  const { select, merge } = topKKernelPair(segment);
  if (!Number.isInteger(k) || k < 1 || 2 * k > segment) {
    throw new RangeError(`top-k: k = ${k} must be an integer in [1, ${segment / 2}]`);
  }
  const { words, count } = exclusionMask(exclude, N);
  if (N - count < k) throw new RangeError(`top-k: k = ${k} but only ${N - count} of ${N} columns are not excluded`);
  const mask = uploadWords(engine, words);
  let segs = Math.ceil(N / segment);
  let values = engine.empty([M, segs * k]);
  let indices = engine.empty([M, segs * k]);
  engine.dispatch(select, [scores, mask, values, indices], grid(M * segs), [u32(M), u32(N), u32(segs), u32(k)]);
  mask.dispose();
  while (segs > 1) {
    const T = segs * k;
    segs = Math.ceil(T / segment);
    const nextValues = engine.empty([M, segs * k]);
    const nextIndices = engine.empty([M, segs * k]);
    engine.dispatch(merge, [values, indices, nextValues, nextIndices], grid(M * segs), [
      u32(M),
      u32(T),
      u32(segs),
      u32(k),
    ]);
    values.dispose();
    indices.dispose();
    values = nextValues;
    indices = nextIndices;
  }
  return { values, indices };
}

export const cosineTopKKernels = [
  normsKernel,
  forwardNaiveKernel,
  forwardTiledKernel,
  backwardAKernel,
  backwardBKernel,
  topKKernelPair(TOPK_SEGMENT).select,
  topKKernelPair(TOPK_SEGMENT).merge,
];
