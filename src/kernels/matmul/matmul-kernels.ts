// WGSL batched matrix multiply (forward and backward) and its dispatch (no autograd here:
// see matmul.ts). Three kernels compute the same thing:
//  - naive: one invocation per output element, straight from global memory. The second
//    reference the tuned kernels are tested against.
//  - tiled (GPUs): a (4·wy)×(4·wx) output tile per workgroup, staged through workgroup
//    memory in K-slices of `tk`; each invocation keeps a 4×4 register block, so every
//    value read from workgroup memory feeds four FMAs.
//  - direct (CPU adapters: llvmpipe, SwiftShader): the same 4×4 register blocks loaded
//    straight from global memory. A CPU's caches already do what workgroup memory does on
//    a GPU, so staging there only adds copies and barriers: ≈ 2× faster on llvmpipe.
// Loads are vec4 where the contiguous dimension is a multiple of 4, scalar otherwise.
// Transposes are compile-time variants that change only how operands are loaded. fp16
// variants store f16 and accumulate in f32; an f32 product may read one operand (a frozen
// fp16 weight) as f16 or packed pairs (weight-variant.ts). A "reduce" count lets one dispatch sum over
// the batch (the gradient of an operand shared by every batch entry) without
// materialising per-batch products.
import type { DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { weightStore, weightVariant, type WeightStore } from '../../engine/weight-variant.ts';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /**
   * The activations' dtype, which the result takes, where the operands' dtypes differ: 'f16'
   * for fp16 activations times an f32 weight (inference only). Default: the operands' common
   * dtype, or f32 when they differ (f32 activations times a frozen fp16 weight).
   */
  out?: DType;
}

/**
 * Register-blocked kernel shape: wx×wy invocations, each computing 4×4 outputs, so a
 * workgroup covers (4·wy)×(4·wx); the tiled kernel stages K in slices of tk (a multiple
 * of 4; the direct kernel ignores it).
 */
export interface MatmulTileConfig {
  wx: number;
  wy: number;
  tk: number;
}

export type MatmulImpl = 'naive' | 'tiled' | 'direct';

/** Which kernel and tile a product runs with (pickMatmulTile). */
export interface MatmulPlan {
  impl: MatmulImpl;
  tile: MatmulTileConfig;
}

export interface MatmulKernelOptions extends MatmulOptions {
  /** Which kernel (default: pickMatmulTile's choice; tests force each one). */
  impl?: MatmulImpl;
  /** Override the tile pickMatmulTile would choose. */
  tile?: MatmulTileConfig;
  /** Forward only: write the result into this view instead of a new tensor (GemmArgs.into). */
  into?: Tensor;
}

const NAIVE_TILE = 16; // 16×16 outputs per workgroup of 256
const REG = 4; // register block edge (fixed: the inner loops are written for vec4 rows)

export function matmulPlanLabel(p: MatmulPlan): string {
  const { wx, wy, tk } = p.tile;
  if (p.impl === 'naive') return `naive ${NAIVE_TILE}x${NAIVE_TILE}`;
  const slice = p.impl === 'tiled' ? `, K-slices of ${tk} in workgroup memory` : ', no workgroup memory';
  return `${p.impl} ${REG * wy}x${REG * wx} (${wx}x${wy} threads × ${REG}x${REG} outputs${slice})`;
}

/** CPU implementations of WebGPU (Mesa llvmpipe/lavapipe, SwiftShader). */
export function isSoftwareAdapter(engine: Engine): boolean {
  const i = engine.info;
  return /llvmpipe|lavapipe|swiftshader|software/i.test(`${i.name} ${i.architecture} ${i.description}`);
}

/**
 * The kernel and tile for an M×N×K product (per batch entry). GPUs: workgroup-memory tiles
 * of 64×64 once both output sides fill one (16 KiB, the default limit), 32×32 for small
 * products so that more workgroups exist; K-slices of 32 keep barriers per FMA low. CPU
 * adapters: direct loads, 32×32 per workgroup of 64 invocations (measured best on llvmpipe).
 */
export function pickMatmulTile(engine: Engine, M: number, N: number, _K: number, impl?: MatmulImpl): MatmulPlan {
  const chosen = impl ?? (isSoftwareAdapter(engine) ? 'direct' : 'tiled');
  if (chosen !== 'tiled') return { impl: chosen, tile: { wx: 8, wy: 8, tk: 0 } };
  if (M >= 64 && N >= 64) return { impl: chosen, tile: { wx: 16, wy: 16, tk: 32 } };
  return { impl: chosen, tile: { wx: 8, wy: 8, tk: 32 } };
}

// ---------------------------------------------------------------------------- codegen

interface Spec {
  impl: MatmulImpl;
  dtype: DType;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
  /** K a multiple of 4 (direct kernel: steps of 4 along K with 4×4 operand blocks). */
  vecK: boolean;
  tile: MatmulTileConfig;
}

// Field order is the order of the u32() list in gemm().
const PARAMS = /* wgsl */ `
struct Params {
  M: u32, N: u32, K: u32,
  tilesN: u32, tilesPerBatch: u32, count: u32,
  reduce: u32,
  strideA: u32, strideB: u32, strideC: u32,
  strideAr: u32, strideBr: u32,
  ldc: u32, offC: u32,
}`;

function bindings(s: Spec, vec: { a: boolean; b: boolean; c: boolean }): string {
  const S = s.dtype;
  const t = (v: boolean) => (v ? `vec4<${S}>` : S);
  const lines = [
    `@group(0) @binding(0) var<storage, read> a: array<${t(vec.a)}>;`,
    `@group(0) @binding(1) var<storage, read> b: array<${t(vec.b)}>;`,
  ];
  let n = 2;
  if (s.bias) lines.push(`@group(0) @binding(${n++}) var<storage, read> bias: array<${t(vec.c)}>;`);
  lines.push(`@group(0) @binding(${n++}) var<storage, read_write> c: array<${t(vec.c)}>;`);
  lines.push(`@group(0) @binding(${n}) var<uniform> p: Params;`);
  return lines.join('\n');
}

// Workgroup → (batch entry z, tile row/column origin); surplus workgroups of grid() leave.
const TILE_PROLOGUE = (tm: number, tn: number) => /* wgsl */ `
  let flat = flatWorkgroup(wid, nwg);
  if (flat >= p.count) { return; }
  let z = flat / p.tilesPerBatch;
  let t = flat % p.tilesPerBatch;
  let row0 = (t / p.tilesN) * ${tm}u;
  let col0 = (t % p.tilesN) * ${tn}u;`;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

function naiveCode(s: Spec): string {
  const S = s.dtype;
  const ia = s.transA ? 'k * p.M + m' : 'm * p.K + k';
  const ib = s.transB ? 'n * p.K + k' : 'k * p.N + n';
  return /* wgsl */ `${S === 'f16' ? 'enable f16;' : ''}
${PARAMS}
${bindings(s, { a: false, b: false, c: false })}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${NAIVE_TILE * NAIVE_TILE})
${ENTRY} {
${TILE_PROLOGUE(NAIVE_TILE, NAIVE_TILE)}
  let m = row0 + lid / ${NAIVE_TILE}u;
  let n = col0 + lid % ${NAIVE_TILE}u;
  if (m >= p.M || n >= p.N) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.reduce; r++) {
    let baseA = z * p.strideA + r * p.strideAr;
    let baseB = z * p.strideB + r * p.strideBr;
    for (var k = 0u; k < p.K; k++) {
      s += f32(a[baseA + ${ia}]) * f32(b[baseB + ${ib}]);
    }
  }
  ${s.bias ? 's += f32(bias[n]);' : ''}
  c[z * p.strideC + p.offC + m * p.ldc + n] = ${S}(s);
}`;
}

// Workgroup-memory layout of the tiles: mA[k·wy + m/4][m%4], mB[k·wx + n/4][n%4]. A and
// B load alike, each along its own side: rows m of A (row0, M, wy slots per k) or columns
// n of B (col0, N, wx slots per k).
interface Side {
  x: 'm' | 'n';
  arr: 'a' | 'b';
  base: string;
  tile: string;
  origin: string;
  dim: string;
  /** vec4 slots per k in the tile. */
  w: number;
}
const sideA = (s: Spec): Side => ({
  x: 'm',
  arr: 'a',
  base: 'baseA',
  tile: 'mA',
  origin: 'row0',
  dim: 'p.M',
  w: s.tile.wy,
});
const sideB = (s: Spec): Side => ({
  x: 'n',
  arr: 'b',
  base: 'baseB',
  tile: 'mB',
  origin: 'col0',
  dim: 'p.N',
  w: s.tile.wx,
});

// One K step of an operand into its tile, zeros outside the matrix. kInner: stored with k
// contiguous (A as (M, K), B as (N, K)); vec: read as vec4.
function loadTile(s: Spec, o: Side, kInner: boolean, vec: boolean): string {
  const { wx, wy, tk } = s.tile;
  const T = wx * wy;
  const TX = REG * o.w;
  const { x, tile, w } = o;
  const g = `g${x}`;
  if (kInner && vec) {
    // A vec4 holds 4 consecutive k of one row (column), scattered to 4 k-rows of the tile.
    return `
    for (var v = lid; v < ${(TX * tk) / 4}u; v += ${T}u) {
      let ${x} = v / ${tk / 4}u;
      let kq = v % ${tk / 4}u;
      let ${g} = ${o.origin} + ${x};
      let gk = k0 + kq * 4u;
      var val = vec4f(0.0);
      if (${g} < ${o.dim} && gk < p.K) { val = vec4f(${o.arr}[(${o.base} + ${g} * p.K + gk) / 4u]); }
      let slot = kq * ${4 * w}u + ${x} / 4u;
      let lane = ${x} % 4u;
      ${tile}[slot][lane] = val.x;
      ${tile}[slot + ${w}u][lane] = val.y;
      ${tile}[slot + ${2 * w}u][lane] = val.z;
      ${tile}[slot + ${3 * w}u][lane] = val.w;
    }`;
  }
  if (kInner) {
    return `
    for (var v = lid; v < ${TX * tk}u; v += ${T}u) {
      let ${x} = v / ${tk}u;
      let kk = v % ${tk}u;
      let ${g} = ${o.origin} + ${x};
      let gk = k0 + kk;
      var val = 0.0;
      if (${g} < ${o.dim} && gk < p.K) { val = f32(${o.arr}[${o.base} + ${g} * p.K + gk]); }
      ${tile}[kk * ${w}u + ${x} / 4u][${x} % 4u] = val;
    }`;
  }
  if (vec) {
    // Stored (K, ·): a vec4 along m (n) drops straight into one tile slot.
    return `
    for (var v = lid; v < ${(TX * tk) / 4}u; v += ${T}u) {
      let kk = v / ${w}u;
      let ${x}q = v % ${w}u;
      let gk = k0 + kk;
      let ${g} = ${o.origin} + ${x}q * 4u;
      var val = vec4f(0.0);
      if (gk < p.K && ${g} < ${o.dim}) { val = vec4f(${o.arr}[(${o.base} + gk * ${o.dim} + ${g}) / 4u]); }
      ${tile}[kk * ${w}u + ${x}q] = val;
    }`;
  }
  return `
    for (var v = lid; v < ${TX * tk}u; v += ${T}u) {
      let kk = v / ${TX}u;
      let ${x} = v % ${TX}u;
      let gk = k0 + kk;
      let ${g} = ${o.origin} + ${x};
      var val = 0.0;
      if (gk < p.K && ${g} < ${o.dim}) { val = f32(${o.arr}[${o.base} + gk * ${o.dim} + ${g}]); }
      ${tile}[kk * ${w}u + ${x} / 4u][${x} % 4u] = val;
    }`;
}

const loadA = (s: Spec) => loadTile(s, sideA(s), !s.transA, s.vecA);
const loadB = (s: Spec) => loadTile(s, sideB(s), s.transB, s.vecB);

// acc_i += av[i] · bv: one k of the 4 × 4 register block (rows av, columns bv).
const FMA_ROWS = [0, 1, 2, 3].map((i) => `      acc${i} = fma(vec4f(av.${'xyzw'[i]}), bv, acc${i});`).join('\n');

function storeC(s: Spec): string {
  const S = s.dtype;
  const rows = [0, 1, 2, 3];
  let biasLoad = '';
  if (s.bias && s.vecC) biasLoad = 'var bv = vec4f(0.0); if (gn < p.N) { bv = vec4f(bias[gn / 4u]); }';
  else if (s.bias) {
    biasLoad =
      'var bv = vec4f(0.0);\n' +
      rows.map((j) => `  if (gn + ${j}u < p.N) { bv[${j}] = f32(bias[gn + ${j}u]); }`).join('\n');
  }
  const plus = s.bias ? ' + bv' : '';
  const body = rows
    .map((i) => {
      const gm = `row0 + ty * 4u + ${i}u`;
      if (s.vecC) {
        return `  { let gm = ${gm}; if (gm < p.M && gn < p.N) { c[(cBase + gm * p.ldc + gn) / 4u] = vec4<${S}>(acc${i}${plus}); } }`;
      }
      const cols = rows.map((j) => `if (gn + ${j}u < p.N) { c[o + ${j}u] = ${S}(r[${j}]); }`).join(' ');
      return `  { let gm = ${gm}; if (gm < p.M) { let o = cBase + gm * p.ldc + gn; let r = acc${i}${plus}; ${cols} } }`;
    })
    .join('\n');
  return `
  let gn = col0 + tx * 4u;
  let cBase = z * p.strideC + p.offC;
  ${biasLoad}
${body}`;
}

function tiledCode(s: Spec): string {
  const { wx, wy, tk } = s.tile;
  return /* wgsl */ `${s.dtype === 'f16' ? 'enable f16;' : ''}
${PARAMS}
${bindings(s, { a: s.vecA, b: s.vecB, c: s.vecC })}
${WGSL_FLAT_INDEX}
var<workgroup> mA: array<vec4f, ${tk * wy}>;
var<workgroup> mB: array<vec4f, ${tk * wx}>;
@compute @workgroup_size(${wx * wy})
${ENTRY} {
${TILE_PROLOGUE(REG * wy, REG * wx)}
  let tx = lid % ${wx}u;
  let ty = lid / ${wx}u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var r = 0u; r < p.reduce; r++) {
    let baseA = z * p.strideA + r * p.strideAr;
    let baseB = z * p.strideB + r * p.strideBr;
    for (var k0 = 0u; k0 < p.K; k0 += ${tk}u) {
${loadA(s)}
${loadB(s)}
      workgroupBarrier();
      for (var k = 0u; k < ${tk}u; k++) {
        let av = mA[k * ${wy}u + ty];
        let bv = mB[k * ${wx}u + tx];
${FMA_ROWS}
      }
      workgroupBarrier();
    }
  }
${storeC(s)}
}`;
}

// Direct kernel operand blocks. Out-of-range rows and columns read a clamped (valid)
// index instead of branching: their results are never stored.
// A(i, j) = op(A)[m_i, k + j], B row j = op(B)[k + j, n0 … n0+3].
function directStep4(s: Spec): string {
  const idx = [0, 1, 2, 3];
  let loadA: string;
  let elemA: (i: number, j: number) => string;
  if (!s.transA) {
    loadA = idx.map((i) => `let ar${i} = vec4f(a[(baseA + mc${i} * p.K + k) / 4u]);`).join('\n      ');
    elemA = (i, j) => `ar${i}[${j}]`;
  } else if (s.vecA) {
    loadA = idx.map((j) => `let ac${j} = vec4f(a[(baseA + (k + ${j}u) * p.M + m0c) / 4u]);`).join('\n      ');
    elemA = (i, j) => `ac${j}[${i}]`;
  } else {
    loadA = idx
      .map((j) => `let ac${j} = vec4f(${idx.map((i) => `f32(a[baseA + (k + ${j}u) * p.M + mc${i}])`).join(', ')});`)
      .join('\n      ');
    elemA = (i, j) => `ac${j}[${i}]`;
  }
  let loadB: string;
  if (s.transB) {
    loadB =
      idx.map((c) => `let bt${c} = vec4f(b[(baseB + nc${c} * p.K + k) / 4u]);`).join('\n      ') +
      '\n      ' +
      idx.map((j) => `let b${j} = vec4f(bt0[${j}], bt1[${j}], bt2[${j}], bt3[${j}]);`).join('\n      ');
  } else if (s.vecB) {
    loadB = idx.map((j) => `let b${j} = vec4f(b[(baseB + (k + ${j}u) * p.N + n0c) / 4u]);`).join('\n      ');
  } else {
    loadB = idx
      .map((j) => `let b${j} = vec4f(${idx.map((c) => `f32(b[baseB + (k + ${j}u) * p.N + nc${c}])`).join(', ')});`)
      .join('\n      ');
  }
  const fmas = idx
    .map((j) => idx.map((i) => `acc${i} = fma(vec4f(${elemA(i, j)}), b${j}, acc${i});`).join(' '))
    .join('\n      ');
  return `
    for (var k = 0u; k < p.K; k += 4u) {
      ${loadA}
      ${loadB}
      ${fmas}
    }`;
}

function directStep1(s: Spec): string {
  const idx = [0, 1, 2, 3];
  const av =
    s.transA && s.vecA
      ? `vec4f(a[(baseA + k * p.M + m0c) / 4u])`
      : `vec4f(${idx.map((i) => `f32(a[baseA + ${s.transA ? `k * p.M + mc${i}` : `mc${i} * p.K + k`}])`).join(', ')})`;
  const bv =
    !s.transB && s.vecB
      ? `vec4f(b[(baseB + k * p.N + n0c) / 4u])`
      : `vec4f(${idx.map((c) => `f32(b[baseB + ${s.transB ? `nc${c} * p.K + k` : `k * p.N + nc${c}`}])`).join(', ')})`;
  return `
    for (var k = 0u; k < p.K; k++) {
      let av = ${av};
      let bv = ${bv};
${FMA_ROWS}
    }`;
}

function directCode(s: Spec): string {
  const { wx, wy } = s.tile;
  const idx = [0, 1, 2, 3];
  return /* wgsl */ `${s.dtype === 'f16' ? 'enable f16;' : ''}
${PARAMS}
${bindings(s, { a: s.vecA, b: s.vecB, c: s.vecC })}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${wx * wy})
${ENTRY} {
${TILE_PROLOGUE(REG * wy, REG * wx)}
  let tx = lid % ${wx}u;
  let ty = lid / ${wx}u;
  let m0 = row0 + ty * 4u;
  let n0 = col0 + tx * 4u;
  ${idx.map((i) => `let mc${i} = min(m0 + ${i}u, p.M - 1u);`).join('\n  ')}
  ${idx.map((c) => `let nc${c} = min(n0 + ${c}u, p.N - 1u);`).join('\n  ')}
  // vec4 variants only: M (N) is then a multiple of 4, so the block is all in or all out.
  let m0c = min(m0, max(p.M, 4u) - 4u);
  let n0c = min(n0, max(p.N, 4u) - 4u);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var r = 0u; r < p.reduce; r++) {
    let baseA = z * p.strideA + r * p.strideAr;
    let baseB = z * p.strideB + r * p.strideBr;
${s.vecK ? directStep4(s) : directStep1(s)}
  }
${storeC(s)}
}`;
}

const cache = new Map<string, KernelDef>();

function specName(s: Spec): string {
  const parts = [`matmul_${s.impl}`, s.dtype];
  if (s.transA || s.transB) parts.push(`t${s.transA ? 'A' : ''}${s.transB ? 'B' : ''}`);
  if (s.bias) parts.push('bias');
  if (s.impl !== 'naive') {
    parts.push(`${REG * s.tile.wy}x${REG * s.tile.wx}${s.impl === 'tiled' ? `x${s.tile.tk}` : ''}`);
    const v = `${s.vecA ? 'a' : ''}${s.vecB ? 'b' : ''}${s.vecC ? 'c' : ''}${s.impl === 'direct' && s.vecK ? 'k' : ''}`;
    if (v) parts.push(`vec4${v}`);
  }
  return parts.join('_');
}

function kernelFor(s: Spec): KernelDef {
  // Normalise the fields a kernel ignores, so that equal kernels share one cache entry.
  if (s.impl === 'naive') {
    s = { ...s, vecA: false, vecB: false, vecC: false, vecK: false, tile: { wx: 0, wy: 0, tk: 0 } };
  } else if (s.impl === 'tiled') s = { ...s, vecK: false };
  else s = { ...s, tile: { ...s.tile, tk: 0 } };
  const name = specName(s);
  let k = cache.get(name);
  if (!k) {
    const { wx, wy, tk } = s.tile;
    if (s.impl !== 'naive' && (wx < 1 || wy < 1 || wx * wy > 256 || (s.impl === 'tiled' && (tk < 4 || tk % 4)))) {
      throw new Error(`matmul: bad tile ${JSON.stringify(s.tile)} (≤ 256 invocations; tiled: tk a multiple of 4)`);
    }
    k = defineKernel({
      name,
      storage: s.bias ? ['read', 'read', 'read', 'write'] : ['read', 'read', 'write'],
      uniforms: true,
      code: s.impl === 'naive' ? naiveCode(s) : s.impl === 'tiled' ? tiledCode(s) : directCode(s),
    });
    cache.set(name, k);
  }
  return k;
}

// ---------------------------------------------------------------------------- dispatch

/** One operand of gemm(): a stack of row-major matrices `stride` elements apart (0: shared). */
export interface GemmOperand {
  t: Tensor;
  trans: boolean;
  stride: number;
}

export interface GemmArgs {
  a: GemmOperand;
  b: GemmOperand;
  /** Per output column, added to every row (linear's bias); same dtype as the operands. */
  bias?: Tensor | null;
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Sum the batch into one (M, N) result instead of producing `batch` of them. */
  sumBatch?: boolean;
  /** Shape of the result (its size must be M·N, or batch·M·N without sumBatch). */
  outShape: readonly number[];
  /** The result's dtype, the activations' (see operandStores; default: the operands' common dtype, else f32). */
  out?: DType;
  /**
   * Write the result here (a view of a larger output, of outShape's size and the result's
   * dtype) instead of into a new tensor: the split paths fill their output in place, with
   * no copy, which for fp16 could not start or end on an odd element.
   */
  into?: Tensor;
  /**
   * With `into` and one output matrix: write the M×N result as columns [offset, offset + N)
   * of `into`'s rows of `stride` elements (linear's output-feature ranges). Default: rows of N.
   */
  intoColumns?: { offset: number; stride: number };
  impl?: MatmulImpl;
  tile?: MatmulTileConfig;
}

function checkDtypes(engine: Engine, what: string, ...ts: Tensor[]): DType {
  const dtype = ts[0].dtype;
  for (const t of ts) {
    if (t.dtype !== dtype) throw new Error(`${what}: mixed dtypes (${ts.join(', ')})`);
  }
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`${what}: f32 or f16 only, got ${ts[0]}`);
  if (dtype === 'f16' && !engine.f16) throw new Error(`${what}: f16 tensors need an adapter with shader-f16`);
  return dtype;
}

/** A product's output dtype: `out` if given, else the operands' common dtype, else f32 (an fp16 weight). */
export function productDtype(operands: readonly Tensor[], out?: DType): DType {
  return out ?? (operands.every((t) => t.dtype === operands[0].dtype) ? operands[0].dtype : 'f32');
}

/**
 * The kernel dtype of a product, its output dtype, and which operands are fp16 tensors read
 * by an f32 kernel (weight-variant.ts). All operands of one dtype that is also the output's
 * run the kernel of that dtype. Otherwise the f32 kernel runs: fp16 operands are read
 * through weightVariant (f32 activations with a frozen fp16 weight, with or without
 * shader-f16), and an fp16 output (fp16 activations with an f32 weight: LoRA at generate
 * time) is stored as f16 by the engine's half-storage rewrite (half-storage.ts), which
 * leaves the operands weightVariant already declared f16 alone. `out` is the activations'
 * dtype; by default the common dtype, or f32 when dtypes are mixed (an fp16 weight).
 */
function operandStores(
  engine: Engine,
  g: GemmArgs,
): { dtype: DType; out: DType; a: WeightStore | null; b: WeightStore | null; bias: WeightStore | null } {
  const ts = [g.a.t, g.b.t, ...(g.bias ? [g.bias] : [])];
  const same = ts.every((t) => t.dtype === ts[0].dtype);
  const out = productDtype(ts, g.out);
  if (same && ts[0].dtype === out) {
    const dtype = checkDtypes(engine, 'matmul', ...ts);
    return { dtype, out: dtype, a: null, b: null, bias: null };
  }
  if (ts.some((t) => t.dtype !== 'f32' && t.dtype !== 'f16'))
    throw new Error(`matmul: mixed dtypes (${ts.join(', ')})`);
  if (out === 'f16' && !engine.f16) {
    throw new Error(`matmul: an fp16 output needs an adapter with shader-f16 (operands ${ts.join(', ')})`);
  }
  if (out === 'f32' && g.a.t.dtype === 'f16' && g.b.t.dtype === 'f16') {
    throw new Error(`matmul: one fp16 weight operand with f32 activations, got ${ts.join(', ')}`);
  }
  return {
    dtype: 'f32',
    out,
    a: weightStore(engine, g.a.t),
    b: weightStore(engine, g.b.t),
    bias: g.bias ? weightStore(engine, g.bias) : null,
  };
}

// a: op(A) is (M, K) per batch entry, b: op(B) is (K, N) → c: (batch, M, N) or (M, N) with sumBatch
export function gemm(engine: Engine, g: GemmArgs): Tensor {
  const { M, N, K, batch } = g;
  const stores = operandStores(engine, g);
  const dtype = stores.dtype;
  const outBatch = g.sumBatch ? 1 : batch;
  if (g.outShape.reduce((p, d) => p * d, 1) !== outBatch * M * N) {
    throw new Error(`matmul: output shape [${g.outShape}] is not ${outBatch}×${M}×${N}`);
  }
  if (g.bias && g.bias.size !== N) throw new Error(`matmul: bias ${g.bias} for ${N} columns`);
  const cols = g.intoColumns ?? { offset: 0, stride: N };
  const plan = pickMatmulTile(engine, M, N, K, g.impl);
  const impl = plan.impl;
  const tile = g.tile ?? plan.tile;
  // vec4 access needs the stored matrix's contiguous dimension (and so every offset) to be a multiple of 4.
  const spec: Spec = {
    impl,
    dtype,
    transA: g.a.trans,
    transB: g.b.trans,
    bias: !!g.bias,
    vecA: (g.a.trans ? M : K) % 4 === 0,
    vecB: (g.b.trans ? K : N) % 4 === 0,
    // vec4 stores: every row of the result starts on a multiple of 4.
    vecC: N % 4 === 0 && cols.stride % 4 === 0 && cols.offset % 4 === 0,
    vecK: K % 4 === 0,
    tile,
  };
  const kernel = weightVariant(
    weightVariant(weightVariant(kernelFor(spec), 'a', stores.a), 'b', stores.b),
    'bias',
    stores.bias,
  );
  const tm = impl === 'naive' ? NAIVE_TILE : REG * tile.wy;
  const tn = impl === 'naive' ? NAIVE_TILE : REG * tile.wx;
  const tilesN = Math.ceil(N / tn);
  const tilesPerBatch = Math.ceil(M / tm) * tilesN;
  const count = tilesPerBatch * outBatch;
  let c: Tensor;
  if (g.into) {
    const fits = g.intoColumns
      ? outBatch === 1 && cols.offset + N <= cols.stride && g.into.size >= cols.stride * M
      : g.into.size === outBatch * M * N;
    if (!fits || g.into.dtype !== stores.out) {
      throw new Error(`matmul: cannot write a ${stores.out} [${g.outShape}] result into ${g.into}`);
    }
    c = g.into;
  } else if (g.intoColumns) throw new Error('matmul: intoColumns needs an into tensor');
  else c = engine.empty(g.outShape, stores.out);
  const shared = g.sumBatch ? 0 : 1;
  const params = [
    u32(M),
    u32(N),
    u32(K),
    u32(tilesN),
    u32(tilesPerBatch),
    u32(count),
    u32(g.sumBatch ? batch : 1),
    u32(g.a.stride * shared),
    u32(g.b.stride * shared),
    u32(M * N * shared),
    u32(g.a.stride * (1 - shared)),
    u32(g.b.stride * (1 - shared)),
    u32(cols.stride),
    u32(cols.offset),
  ];
  const buffers = g.bias ? [g.a.t, g.b.t, g.bias, c] : [g.a.t, g.b.t, c];
  // K = 0 still launches (and writes zeros, or the bias); M or N = 0 leaves nothing to do.
  if (count > 0) engine.dispatch(kernel, buffers, grid(count), params);
  return c;
}

export interface MatmulDims {
  batchShape: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  /** Elements between consecutive batch matrices of a / b (0: one matrix shared by all). */
  strideA: number;
  strideB: number;
}

/** Validate shapes and return the product's dimensions (a or b may be a shared 2-D matrix). */
export function matmulDims(aShape: readonly number[], bShape: readonly number[], o: MatmulOptions = {}): MatmulDims {
  const ra = aShape.length;
  const rb = bShape.length;
  const show = () => `a [${aShape}]${o.transA ? 'ᵀ' : ''} · b [${bShape}]${o.transB ? 'ᵀ' : ''}`;
  if (ra < 2 || rb < 2) throw new Error(`matmul: operands need rank ≥ 2, got ${show()}`);
  const [a0, a1] = aShape.slice(ra - 2);
  const [b0, b1] = bShape.slice(rb - 2);
  const M = o.transA ? a1 : a0;
  const K = o.transA ? a0 : a1;
  const N = o.transB ? b0 : b1;
  if ((o.transB ? b1 : b0) !== K) throw new Error(`matmul: inner dimensions differ in ${show()}`);
  const batchA = aShape.slice(0, ra - 2);
  const batchB = bShape.slice(0, rb - 2);
  if (ra > 2 && rb > 2 && batchA.join() !== batchB.join()) {
    throw new Error(`matmul: batch dimensions differ in ${show()} (one operand may be 2-D instead)`);
  }
  const batchShape = ra > 2 ? batchA : batchB;
  return {
    batchShape,
    batch: batchShape.reduce((p, d) => p * d, 1),
    M,
    N,
    K,
    strideA: ra > 2 ? M * K : 0,
    strideB: rb > 2 ? K * N : 0,
  };
}

// a: (…, M, K) or (…, K, M) with transA; b: (…, K, N) or (…, N, K) with transB; either may
// be 2-D and shared across the other's batch; bias: (N) → y: (…, M, N)
export function matmulForward(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  opts: MatmulKernelOptions = {},
  bias: Tensor | null = null,
): Tensor {
  const d = matmulDims(a.shape, b.shape, opts);
  return gemm(engine, {
    a: { t: a, trans: !!opts.transA, stride: d.strideA },
    b: { t: b, trans: !!opts.transB, stride: d.strideB },
    bias,
    M: d.M,
    N: d.N,
    K: d.K,
    batch: d.batch,
    outShape: [...d.batchShape, d.M, d.N],
    out: opts.out,
    into: opts.into,
    impl: opts.impl,
    tile: opts.tile,
  });
}

// Same layouts as matmulForward; dY: (…, M, N) → [dA shaped like a, dB shaped like b]
// (null where `need` is false). A shared operand's gradient sums over the batch in-kernel.
export function matmulBackward(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  dY: Tensor,
  opts: MatmulKernelOptions = {},
  need: readonly [boolean, boolean] = [true, true],
): [Tensor | null, Tensor | null] {
  const d = matmulDims(a.shape, b.shape, opts);
  const { M, N, K, batch } = d;
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const strideY = M * N;
  const common = { batch, impl: opts.impl, tile: opts.tile };
  let dA: Tensor | null = null;
  let dB: Tensor | null = null;
  if (need[0]) {
    const sumBatch = d.strideA === 0 && batch > 1;
    dA = transA
      ? // dA (K, M) = op(B) · dYᵀ
        gemm(engine, {
          ...common,
          a: { t: b, trans: transB, stride: d.strideB },
          b: { t: dY, trans: true, stride: strideY },
          M: K,
          N: M,
          K: N,
          sumBatch,
          outShape: a.shape,
        })
      : // dA (M, K) = dY · op(B)ᵀ
        gemm(engine, {
          ...common,
          a: { t: dY, trans: false, stride: strideY },
          b: { t: b, trans: !transB, stride: d.strideB },
          M,
          N: K,
          K: N,
          sumBatch,
          outShape: a.shape,
        });
  }
  if (need[1]) {
    const sumBatch = d.strideB === 0 && batch > 1;
    dB = transB
      ? // dB (N, K) = dYᵀ · op(A)
        gemm(engine, {
          ...common,
          a: { t: dY, trans: true, stride: strideY },
          b: { t: a, trans: transA, stride: d.strideA },
          M: N,
          N: K,
          K: M,
          sumBatch,
          outShape: b.shape,
        })
      : // dB (K, N) = op(A)ᵀ · dY
        gemm(engine, {
          ...common,
          a: { t: a, trans: !transA, stride: d.strideA },
          b: { t: dY, trans: false, stride: strideY },
          M: K,
          N,
          K: M,
          sumBatch,
          outShape: b.shape,
        });
  }
  return [dA, dB];
}

export interface MatmulVariantFilter {
  transA: boolean;
  transB: boolean;
  bias: boolean;
}

const ALL_VARIANTS: MatmulVariantFilter[] = [false, true].flatMap((transA) =>
  [false, true].flatMap((transB) => [false, true].map((bias) => ({ transA, transB, bias }))),
);

/**
 * The kernel variants gemm() can pick for `dtype` (compile tests, benchmark): naive, tiled
 * (each tile in `tiles`, default those pickMatmulTile returns) and direct, with vec4 and
 * scalar loads, for each transpose/bias combination in `combos` (default: all).
 */
export function matmulKernelVariants(
  dtype: DType = 'f32',
  tiles: readonly MatmulTileConfig[] = [
    { wx: 16, wy: 16, tk: 32 },
    { wx: 8, wy: 8, tk: 32 },
  ],
  combos: readonly MatmulVariantFilter[] = ALL_VARIANTS,
): KernelDef[] {
  const out: KernelDef[] = [];
  for (const { transA, transB, bias } of combos) {
    const base = { dtype, transA, transB, bias, vecA: false, vecB: false, vecC: false, vecK: false };
    out.push(kernelFor({ ...base, impl: 'naive', tile: tiles[0] }));
    for (const vec of [false, true]) {
      const v = { ...base, vecA: vec, vecB: vec, vecC: vec, vecK: vec };
      for (const tile of tiles) out.push(kernelFor({ ...v, impl: 'tiled', tile }));
      out.push(kernelFor({ ...v, impl: 'direct', tile: { wx: 8, wy: 8, tk: 0 } }));
    }
  }
  return out;
}

export const matmulKernels: KernelDef[] = matmulKernelVariants('f32');
