// WGSL attention, forward and backward, and their dispatch (no autograd here: see
// attention.ts). Two implementations:
//
// - the tuned, memory-efficient one (FlashAttention-2 style): never stores a score matrix.
//   The forward gives each invocation one query; a workgroup walks K/V in tiles staged in
//   workgroup memory and keeps an online softmax (running max m and sum l), so memory is
//   O(N·D). It also writes the log-sum-exp L of each query row, from which the backward
//   recomputes P = exp(s − L) tile by tile. The backward runs three passes, none needing
//   atomics: Di = rowsum(dO ∘ O); dQ with one invocation per query looping over key tiles;
//   dK and dV with one invocation per key looping over query tiles.
// - a naive one that materialises the (B, H, Nq, Nk) scores and reuses the softmax
//   kernels: a second, independent GPU reference for small test sizes only.
//
// Layout everywhere: q (B, Nq, H·D), k and v (B, Nk, H·D) — what linear projections produce,
// head h owning columns h·D … h·D+D−1 — so nothing is permuted. With causal masking key j
// is visible to query i iff j ≤ i (aligned at the first token also when Nq ≠ Nk).
import type { DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, f32, grid, grid1d, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { forEachRowRange } from '../../engine/split.ts';
import { softmaxBackward, softmaxForward } from '../softmax/softmax-kernels.ts';

export interface AttentionOptions {
  /** Multiplies q·k before the softmax; default 1/sqrt(D). */
  scale?: number;
  /** Key j is visible to query i iff j ≤ i (CLIP's text encoder). */
  causal?: boolean;
}

/** Largest head dimension the tuned kernels accept (the SD VAE's mid-block uses 512). */
export const ATTENTION_MAX_HEAD_DIM = 4096;
/**
 * Head dims above this take the wide kernels (see wideVariant): one invocation per row
 * would hold 2–4 arrays of D floats in registers and stage tiles of just a few rows.
 */
export const ATTENTION_WIDE_ABOVE = 256;

// Queries (forward, dQ) or keys (dK/dV; 32 when that pads less, see dkvKeys) per
// workgroup, one per invocation.
const WG = 64;
// Two f32 tiles of (TILE × D) must fit WebGPU's default 16 KiB of workgroup memory, so
// every adapter runs the same kernels: D = 40/64 → 32 rows, 80 → 25, 160 → 12.
const WORKGROUP_BYTES = 16384;
const MAX_TILE = 32;
// A finite "minus infinity": WGSL does not promise IEEE infinities.
const NEG = '-1.0e30';

interface Variant {
  dtype: DType;
  d: number;
  /** Values per vector: 4 when D is a multiple of 4 (vec4 loads and dot products). */
  w: 1 | 4;
  /** Head dimension in vectors. */
  dv: number;
  tile: number;
  /** WGSL types: in registers / workgroup memory, and in storage. */
  vec: string;
  mem: string;
}

export const attentionTile = (d: number): number =>
  Math.max(1, Math.min(MAX_TILE, Math.floor(WORKGROUP_BYTES / (8 * d))));

function variant(dtype: DType, d: number): Variant {
  const w = d % 4 === 0 ? 4 : 1;
  return {
    dtype,
    d,
    w,
    dv: d / w,
    tile: attentionTile(d),
    vec: w === 4 ? 'vec4f' : 'f32',
    mem: w === 4 ? `vec4<${dtype}>` : dtype,
  };
}

// Shared by the four tuned kernels. Rows are H·DV vectors long; (b, h) pairs and the
// tiles along the sequence are flattened into the workgroup index.
const prelude = (x: Variant, wg = WG) => /* wgsl */ `${x.dtype === 'f16' ? 'enable f16;' : ''}
struct Params { B: u32, Nq: u32, Nk: u32, H: u32, scale: f32, causal: u32 }
const DV = ${x.dv}u;
const WG = ${wg}u;
const TILE = ${x.tile}u;
const NEG = ${NEG};
fn vdot(a: ${x.vec}, b: ${x.vec}) -> f32 { return ${x.w === 4 ? 'dot(a, b)' : 'a * b'}; }
${WGSL_FLAT_INDEX}`;

// Storage bindings in order, then the Params uniform. An entry is a name (an array of the
// storage type `mem`) or `name:f32`; `writes` are read_write.
const bindings = (mem: string, reads: string[], writes: string[]): string =>
  [...reads.map((e) => [e, 'read'] as const), ...writes.map((e) => [e, 'read_write'] as const)]
    .map(([e, access], i) => {
      const [name, type = mem] = e.split(':');
      return `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
    })
    .concat(`@group(0) @binding(${reads.length + writes.length}) var<uniform> p: Params;`)
    .join('\n');

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {`;
const MAIN = /* wgsl */ `@compute @workgroup_size(WG)
${ENTRY}`;

// Per-invocation register arrays of `len` vectors, filled in one loop over `idx` < `end`:
// [register, source] loads src[base + idx] (times p.scale when a third entry says so),
// [register] starts at zero.
const registers = (
  vec: string,
  { len, idx, end, base }: { len: string; idx: string; end: string; base: string },
  regs: ([string] | [string, string] | [string, string, 'scaled'])[],
): string => `${regs.map(([r]) => `  var ${r}: array<${vec}, ${len}>;`).join('\n')}
  for (var ${idx} = 0u; ${idx} < ${end}; ${idx}++) {
${regs
  .map(([r, src, scaled]) =>
    src
      ? `    ${r}[${idx}] = ${vec}(${src}[${base} + ${idx}])${scaled ? ' * p.scale' : ''};`
      : `    ${r}[${idx}] = ${vec}(0.0);`,
  )
  .join('\n')}
  }`;

// Tuned kernels: this workgroup's (b, h) and its first row `first` of WG along `rows`.
const tunedHeader = (tiles: string, rows: string, first: string) => /* wgsl */ `
  let ${tiles} = (${rows} + WG - 1u) / WG;
  let wg = flatWorkgroup(wid, nwg);
  if (wg >= p.B * p.H * ${tiles}) { return; }
  let bh = wg / ${tiles};
  let ${first} = (wg % ${tiles}) * WG;
  let b = bh / p.H;
  let h = bh % p.H;
  let stride = p.H * DV;`;

// Tuned kernels: stage rows start … start+TILE−1 (zeros past `end`) of two storage arrays,
// [local, tile, source] each, into workgroup memory.
const stageTile = (
  vec: string,
  { row, start, end, base }: { row: string; start: string; end: string; base: string },
  arrays: [string, string, string][],
) => /* wgsl */ `
    workgroupBarrier();
    for (var e = lid; e < TILE * DV; e += WG) {
      let ${row} = ${start} + e / DV;
${arrays.map(([l]) => `      var ${l} = ${vec}(0.0);`).join('\n')}
      if (${row} < ${end}) {
        let g = ${base} + ${row} * stride + e % DV;
${arrays.map(([l, , src]) => `        ${l} = ${vec}(${src}[g]);`).join('\n')}
      }
${arrays.map(([l, t]) => `      ${t}[e] = ${l};`).join('\n')}
    }
    workgroupBarrier();`;

const cache = new Map<string, KernelDef>();
const memo = (key: string, make: () => KernelDef): KernelDef => {
  let k = cache.get(key);
  if (!k) cache.set(key, (k = make()));
  return k;
};

// q: (B, Nq, H·D), k, v: (B, Nk, H·D) → o: (B, Nq, H·D), lse: (B, H, Nq) f32
const forwardKernel = (x: Variant): KernelDef =>
  memo(`fwd_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_forward_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'read', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${prelude(x)}
${bindings(x.mem, ['q', 'k', 'v'], ['o', 'lse:f32'])}
var<workgroup> kt: array<${x.vec}, TILE * DV>;
var<workgroup> vt: array<${x.vec}, TILE * DV>;

${MAIN}${tunedHeader('qTiles', 'p.Nq', 'q0')}
  // Invocations past the last query compute on a clamped row and write nothing: they must
  // still reach every barrier.
  let i = q0 + lid;
  let qBase = (b * p.Nq + min(i, p.Nq - 1u)) * stride + h * DV;
  let kvBase = b * p.Nk * stride + h * DV;

${registers(x.vec, { len: 'DV', idx: 'd', end: 'DV', base: 'qBase' }, [['qr', 'q', 'scaled'], ['acc']])}
  var m = NEG;
  var l = 0.0;
  var s: array<f32, TILE>;
  // Causal: no query of this tile sees a key past its last query.
  var kEnd = p.Nk;
  if (p.causal != 0u) { kEnd = min(p.Nk, min(q0 + WG, p.Nq)); }

  for (var k0 = 0u; k0 < kEnd; k0 += TILE) {${stageTile(x.vec, { row: 'j', start: 'k0', end: 'p.Nk', base: 'kvBase' }, [
    ['kv', 'kt', 'k'],
    ['vv', 'vt', 'v'],
  ])}
    let cEnd = min(TILE, kEnd - k0);
    // The tile's scores first, so the running sums are rescaled once per tile, not per key.
    var tmax = m;
    for (var c = 0u; c < cEnd; c++) {
      var sc = NEG;
      if (p.causal == 0u || k0 + c <= i) {
        sc = 0.0;
        for (var d = 0u; d < DV; d++) { sc += vdot(qr[d], kt[c * DV + d]); }
      }
      s[c] = sc;
      tmax = max(tmax, sc);
    }
    let corr = exp(m - tmax);
    l *= corr;
    for (var d = 0u; d < DV; d++) { acc[d] *= corr; }
    for (var c = 0u; c < cEnd; c++) {
      if (p.causal == 0u || k0 + c <= i) {
        let pc = exp(s[c] - tmax);
        l += pc;
        for (var d = 0u; d < DV; d++) { acc[d] += pc * vt[c * DV + d]; }
      }
    }
    m = tmax;
  }
  if (i < p.Nq) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < DV; d++) { o[qBase + d] = ${x.mem}(acc[d] * inv); }
    lse[bh * p.Nq + i] = m + log(l);
  }
}`,
    }),
  );

// o, dO: (B, Nq, H·D) → delta: (B, H, Nq) f32, delta = rowsum(dO ∘ O) per head
const deltaKernel = (x: Variant): KernelDef =>
  memo(`delta_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_backward_delta_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${prelude(x)}
${bindings(x.mem, ['o', 'dO'], ['delta:f32'])}

${MAIN}
  // One invocation per (b, i, h), in memory order so neighbours read neighbouring heads.
  let idx = flatIndex(wid, nwg, lid, WG);
  if (idx >= p.B * p.Nq * p.H) { return; }
  let h = idx % p.H;
  let t = idx / p.H;
  let b = t / p.Nq;
  let i = t % p.Nq;
  let base = idx * DV;
  var acc = 0.0;
  for (var d = 0u; d < DV; d++) { acc += vdot(${x.vec}(o[base + d]), ${x.vec}(dO[base + d])); }
  delta[(b * p.H + h) * p.Nq + i] = acc;
}`,
    }),
  );

// q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D), lse, delta: (B, H, Nq) → dQ: (B, Nq, H·D)
const dqKernel = (x: Variant): KernelDef =>
  memo(`dq_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_backward_dq_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${prelude(x)}
${bindings(x.mem, ['q', 'k', 'v', 'dO', 'lse:f32', 'delta:f32'], ['dQ'])}
var<workgroup> kt: array<${x.vec}, TILE * DV>;
var<workgroup> vt: array<${x.vec}, TILE * DV>;

${MAIN}${tunedHeader('qTiles', 'p.Nq', 'q0')}
  let i = q0 + lid;
  let ic = min(i, p.Nq - 1u);
  let qBase = (b * p.Nq + ic) * stride + h * DV;
  let kvBase = b * p.Nk * stride + h * DV;

${registers(x.vec, { len: 'DV', idx: 'd', end: 'DV', base: 'qBase' }, [['qr', 'q', 'scaled'], ['dor', 'dO'], ['acc']])}
  let L = lse[bh * p.Nq + ic];
  let Di = delta[bh * p.Nq + ic];
  var kEnd = p.Nk;
  if (p.causal != 0u) { kEnd = min(p.Nk, min(q0 + WG, p.Nq)); }

  for (var k0 = 0u; k0 < kEnd; k0 += TILE) {${stageTile(x.vec, { row: 'j', start: 'k0', end: 'p.Nk', base: 'kvBase' }, [
    ['kv', 'kt', 'k'],
    ['vv', 'vt', 'v'],
  ])}
    let cEnd = min(TILE, kEnd - k0);
    for (var c = 0u; c < cEnd; c++) {
      if (p.causal == 0u || k0 + c <= i) {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < DV; d++) {
          sc += vdot(qr[d], kt[c * DV + d]);
          dp += vdot(dor[d], vt[c * DV + d]);
        }
        let ds = exp(sc - L) * (dp - Di);
        for (var d = 0u; d < DV; d++) { acc[d] += ds * kt[c * DV + d]; }
      }
    }
  }
  if (i < p.Nq) {
    for (var d = 0u; d < DV; d++) { dQ[qBase + d] = ${x.mem}(acc[d] * p.scale); }
  }
}`,
    }),
  );

// q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D), lse, delta: (B, H, Nq) → dK, dV: (B, Nk, H·D)
const dkvKernel = (x: Variant, keys: number = WG): KernelDef =>
  memo(`dkv_${x.dtype}_${x.d}_${keys}`, () =>
    defineKernel({
      name: `attention_backward_dkv_${x.dtype}_d${x.d}${keys === WG ? '' : `_k${keys}`}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${prelude(x, keys)}
${bindings(x.mem, ['q', 'k', 'v', 'dO', 'lse:f32', 'delta:f32'], ['dK', 'dV'])}
var<workgroup> qt: array<${x.vec}, TILE * DV>;
var<workgroup> dOt: array<${x.vec}, TILE * DV>;

${MAIN}${tunedHeader('kTiles', 'p.Nk', 'j0')}
  let j = j0 + lid;
  let kBase = (b * p.Nk + min(j, p.Nk - 1u)) * stride + h * DV;
  let qBase = b * p.Nq * stride + h * DV;

  // k is pre-scaled so that q·kr is the score s itself.
${registers(x.vec, { len: 'DV', idx: 'd', end: 'DV', base: 'kBase' }, [
  ['kr', 'k', 'scaled'],
  ['vr', 'v'],
  ['dk'],
  ['dv'],
])}
  // Causal: queries before this tile's first key see none of its keys.
  var iStart = 0u;
  if (p.causal != 0u) { iStart = j0; }

  for (var i0 = iStart; i0 < p.Nq; i0 += TILE) {${stageTile(
    x.vec,
    { row: 'i', start: 'i0', end: 'p.Nq', base: 'qBase' },
    [
      ['qv', 'qt', 'q'],
      ['dov', 'dOt', 'dO'],
    ],
  )}
    let rEnd = min(TILE, p.Nq - i0);
    for (var r = 0u; r < rEnd; r++) {
      if (p.causal == 0u || j <= i0 + r) {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < DV; d++) {
          sc += vdot(qt[r * DV + d], kr[d]);
          dp += vdot(dOt[r * DV + d], vr[d]);
        }
        // Same address in every invocation: a broadcast read, cheaper than staging.
        let pr = exp(sc - lse[bh * p.Nq + i0 + r]);
        let ds = pr * (dp - delta[bh * p.Nq + i0 + r]);
        for (var d = 0u; d < DV; d++) {
          dv[d] += pr * dOt[r * DV + d];
          dk[d] += ds * qt[r * DV + d];
        }
      }
    }
  }
  if (j < p.Nk) {
    for (var d = 0u; d < DV; d++) {
      dK[kBase + d] = ${x.mem}(dk[d] * p.scale);
      dV[kBase + d] = ${x.mem}(dv[d]);
    }
  }
}`,
    }),
  );

// ------------------------------------------------------------------ wide heads (D > 256)
//
// The SD VAE's mid-block attention is one head of width 512. Above ATTENTION_WIDE_ABOVE the
// head dimension is split across invocations instead: a workgroup of 64 owns R rows
// (queries, or keys for dK/dV) × S slices of the head, and invocation (r, s) keeps only its
// slice of ≤ 64 floats in registers (q, the output accumulator, …). Each score needs the
// whole head, so every invocation writes its slice's partial dot product to workgroup
// memory and, after a barrier, each sums the S partials of its row (redundantly, which is
// cheaper than a second barrier). The other side (keys for the forward and dQ, queries for
// dK/dV) is read straight from storage: the R rows of a workgroup read the same one, which
// caches serve, and staging a 512-wide tile would leave room for only a few rows in 16 KiB.
// The online softmax, log-sum-exp and the three backward passes are those described at the
// top of this file; the delta kernel (one invocation per row) serves both widths.

interface WideVariant {
  dtype: DType;
  d: number;
  w: 1 | 4;
  dv: number;
  /** Slices per head, rows per workgroup (S·R = WG), vectors per slice. */
  s: number;
  r: number;
  sw: number;
  /** Other-side rows per pass; the partial sums take WG·TK·4 bytes per array. */
  tk: number;
  vec: string;
  mem: string;
}

const WIDE_SLICE_FLOATS = 64;
const WIDE_TK = 32;

export function wideVariant(dtype: DType, d: number): WideVariant {
  const w = d % 4 === 0 ? 4 : 1;
  const dv = d / w;
  // Smallest power of two giving slices of ≤ 64 floats; at most one row per workgroup.
  let s = 1;
  while (s < WG && Math.ceil(d / s) > WIDE_SLICE_FLOATS) s *= 2;
  return {
    dtype,
    d,
    w,
    dv,
    s,
    r: WG / s,
    sw: Math.ceil(dv / s),
    tk: WIDE_TK,
    vec: w === 4 ? 'vec4f' : 'f32',
    mem: w === 4 ? `vec4<${dtype}>` : dtype,
  };
}

const widePrelude = (x: WideVariant, partials: number) => /* wgsl */ `${x.dtype === 'f16' ? 'enable f16;' : ''}
struct Params { B: u32, Nq: u32, Nk: u32, H: u32, scale: f32, causal: u32 }
const DV = ${x.dv}u;
const WG = ${WG}u;
const S = ${x.s}u;
const R = ${x.r}u;
const SW = ${x.sw}u;
const TK = ${x.tk}u;
const NEG = ${NEG};
fn vdot(a: ${x.vec}, b: ${x.vec}) -> f32 { return ${x.w === 4 ? 'dot(a, b)' : 'a * b'}; }
${['partS', 'partP']
  .slice(0, partials)
  .map((n) => `var<workgroup> ${n}: array<f32, WG * TK>;`)
  .join('\n')}
// Sum of the S slice partials of (row r, column c).
fn sumParts${partials === 2 ? '2' : ''}(r: u32, c: u32) -> ${partials === 2 ? 'vec2f' : 'f32'} {
  let o = (r * TK + c) * S;
  var acc = ${partials === 2 ? 'vec2f(0.0)' : '0.0'};
  for (var u = 0u; u < S; u++) { acc += ${partials === 2 ? 'vec2f(partS[o + u], partP[o + u])' : 'partS[o + u]'}; }
  return acc;
}
${WGSL_FLAT_INDEX}`;

// Shared start of the wide kernels: this workgroup's (b, h), its first owned row r0 of n
// rows, and this invocation's row (clamped copy rc for loads), slice start and length.
const wideHeader = (rows: string) => /* wgsl */ `
  let tiles = (${rows} + R - 1u) / R;
  let wg = flatWorkgroup(wid, nwg);
  if (wg >= p.B * p.H * tiles) { return; }
  let bh = wg / tiles;
  let r0 = (wg % tiles) * R;
  let b = bh / p.H;
  let h = bh % p.H;
  let stride = p.H * DV;
  let r = lid / S;
  let d0 = (lid % S) * SW;
  let n = min(SW, DV - min(d0, DV));
  let row = r0 + r;
  let rc = min(row, ${rows} - 1u);`;

// Backward wide kernels: this slice's parts of the two dot products of row r with other-side
// row c — the score (vdot arguments `s`) and dO·v (`dp`) — into partS and partP.
const widePartials = (s: string, dp: string) => /* wgsl */ `      var ps = 0.0;
      var pd = 0.0;
      for (var t = 0u; t < n; t++) {
        ps += vdot(${s});
        pd += vdot(${dp});
      }
      partS[(r * TK + c) * S + lid % S] = ps;
      partP[(r * TK + c) * S + lid % S] = pd;`;

// q: (B, Nq, H·D), k, v: (B, Nk, H·D) → o: (B, Nq, H·D), lse: (B, H, Nq) f32
const wideForwardKernel = (x: WideVariant): KernelDef =>
  memo(`wfwd_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_forward_wide_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'read', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${widePrelude(x, 1)}
${bindings(x.mem, ['q', 'k', 'v'], ['o', 'lse:f32'])}

${MAIN}${wideHeader('p.Nq')}
  let i = row;
  let qBase = (b * p.Nq + rc) * stride + h * DV + d0;
  let kvBase = b * p.Nk * stride + h * DV + d0;
${registers(x.vec, { len: 'SW', idx: 't', end: 'n', base: 'qBase' }, [['qr', 'q', 'scaled'], ['acc']])}
  var m = NEG;
  var l = 0.0;
  var s: array<f32, TK>;
  var kEnd = p.Nk;
  if (p.causal != 0u) { kEnd = min(p.Nk, min(r0 + R, p.Nq)); }

  for (var k0 = 0u; k0 < kEnd; k0 += TK) {
    let cEnd = min(TK, kEnd - k0);
    for (var c = 0u; c < cEnd; c++) {
      let g = kvBase + (k0 + c) * stride;
      var part = 0.0;
      for (var t = 0u; t < n; t++) { part += vdot(qr[t], ${x.vec}(k[g + t])); }
      partS[(r * TK + c) * S + lid % S] = part;
    }
    workgroupBarrier();
    var tmax = m;
    for (var c = 0u; c < cEnd; c++) {
      var sc = NEG;
      if (p.causal == 0u || k0 + c <= i) { sc = sumParts(r, c); }
      s[c] = sc;
      tmax = max(tmax, sc);
    }
    // The partials are overwritten by the next pass.
    workgroupBarrier();
    let corr = exp(m - tmax);
    l *= corr;
    for (var t = 0u; t < n; t++) { acc[t] *= corr; }
    for (var c = 0u; c < cEnd; c++) {
      if (p.causal == 0u || k0 + c <= i) {
        let pc = exp(s[c] - tmax);
        l += pc;
        let g = kvBase + (k0 + c) * stride;
        for (var t = 0u; t < n; t++) { acc[t] += pc * ${x.vec}(v[g + t]); }
      }
    }
    m = tmax;
  }
  if (i < p.Nq) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var t = 0u; t < n; t++) { o[qBase + t] = ${x.mem}(acc[t] * inv); }
    if (lid % S == 0u) { lse[bh * p.Nq + i] = m + log(l); }
  }
}`,
    }),
  );

// q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D), lse, delta: (B, H, Nq) → dQ: (B, Nq, H·D)
const wideDqKernel = (x: WideVariant): KernelDef =>
  memo(`wdq_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_backward_dq_wide_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${widePrelude(x, 2)}
${bindings(x.mem, ['q', 'k', 'v', 'dO', 'lse:f32', 'delta:f32'], ['dQ'])}

${MAIN}${wideHeader('p.Nq')}
  let i = row;
  let qBase = (b * p.Nq + rc) * stride + h * DV + d0;
  let kvBase = b * p.Nk * stride + h * DV + d0;
${registers(x.vec, { len: 'SW', idx: 't', end: 'n', base: 'qBase' }, [['qr', 'q', 'scaled'], ['dor', 'dO'], ['acc']])}
  let L = lse[bh * p.Nq + rc];
  let Di = delta[bh * p.Nq + rc];
  var kEnd = p.Nk;
  if (p.causal != 0u) { kEnd = min(p.Nk, min(r0 + R, p.Nq)); }

  for (var k0 = 0u; k0 < kEnd; k0 += TK) {
    let cEnd = min(TK, kEnd - k0);
    for (var c = 0u; c < cEnd; c++) {
      let g = kvBase + (k0 + c) * stride;
${widePartials(`qr[t], ${x.vec}(k[g + t])`, `dor[t], ${x.vec}(v[g + t])`)}
    }
    workgroupBarrier();
    for (var c = 0u; c < cEnd; c++) {
      if (p.causal == 0u || k0 + c <= i) {
        let sp = sumParts2(r, c);
        let ds = exp(sp.x - L) * (sp.y - Di);
        let g = kvBase + (k0 + c) * stride;
        for (var t = 0u; t < n; t++) { acc[t] += ds * ${x.vec}(k[g + t]); }
      }
    }
    workgroupBarrier();
  }
  if (i < p.Nq) {
    for (var t = 0u; t < n; t++) { dQ[qBase + t] = ${x.mem}(acc[t] * p.scale); }
  }
}`,
    }),
  );

// q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D), lse, delta: (B, H, Nq) → dK, dV: (B, Nk, H·D)
const wideDkvKernel = (x: WideVariant): KernelDef =>
  memo(`wdkv_${x.dtype}_${x.d}`, () =>
    defineKernel({
      name: `attention_backward_dkv_wide_${x.dtype}_d${x.d}`,
      storage: ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'],
      uniforms: true,
      code: /* wgsl */ `${widePrelude(x, 2)}
${bindings(x.mem, ['q', 'k', 'v', 'dO', 'lse:f32', 'delta:f32'], ['dK', 'dV'])}

${MAIN}${wideHeader('p.Nk')}
  let j = row;
  let kBase = (b * p.Nk + rc) * stride + h * DV + d0;
  let qBase = b * p.Nq * stride + h * DV + d0;
  // k is pre-scaled so that q·kr is the score s itself.
${registers(x.vec, { len: 'SW', idx: 't', end: 'n', base: 'kBase' }, [
  ['kr', 'k', 'scaled'],
  ['vr', 'v'],
  ['dk'],
  ['dv'],
])}
  // Causal: queries before this workgroup's first key see none of its keys.
  var iStart = 0u;
  if (p.causal != 0u) { iStart = r0; }

  for (var i0 = iStart; i0 < p.Nq; i0 += TK) {
    let cEnd = min(TK, p.Nq - i0);
    for (var c = 0u; c < cEnd; c++) {
      let g = qBase + (i0 + c) * stride;
${widePartials(`${x.vec}(q[g + t]), kr[t]`, `${x.vec}(dO[g + t]), vr[t]`)}
    }
    workgroupBarrier();
    for (var c = 0u; c < cEnd; c++) {
      if (p.causal == 0u || j <= i0 + c) {
        let sp = sumParts2(r, c);
        let pr = exp(sp.x - lse[bh * p.Nq + i0 + c]);
        let ds = pr * (sp.y - delta[bh * p.Nq + i0 + c]);
        let g = qBase + (i0 + c) * stride;
        for (var t = 0u; t < n; t++) {
          dv[t] += pr * ${x.vec}(dO[g + t]);
          dk[t] += ds * ${x.vec}(q[g + t]);
        }
      }
    }
    workgroupBarrier();
  }
  if (j < p.Nk) {
    for (var t = 0u; t < n; t++) {
      dK[kBase + t] = ${x.mem}(dk[t] * p.scale);
      dV[kBase + t] = ${x.mem}(dv[t]);
    }
  }
}`,
    }),
  );

// Keys per dK/dV workgroup. Every workgroup walks all the queries, so padding lanes past
// Nk cost full price: CLIP's 77 keys fill 128 lanes in 64-key workgroups, 96 in 32-key ones.
const DKV_KEYS = [WG, 32] as const;
const dkvKeys = (nk: number): number =>
  DKV_KEYS.reduce((best, n) => (Math.ceil(nk / n) * n < Math.ceil(nk / best) * best ? n : best));

/** The tuned kernels (dK/dV in two key tilings) for one storage type and head dimension. */
export function attentionKernelsFor(dtype: DType, headDim: number): KernelDef[] {
  const x = variant(dtype, headDim);
  if (headDim > ATTENTION_WIDE_ABOVE) {
    const y = wideVariant(dtype, headDim);
    return [wideForwardKernel(y), deltaKernel(x), wideDqKernel(y), wideDkvKernel(y)];
  }
  return [forwardKernel(x), deltaKernel(x), dqKernel(x), ...DKV_KEYS.map((keys) => dkvKernel(x, keys))];
}

// ------------------------------------------------------------------ shapes and dispatch

interface Dims {
  B: number;
  Nq: number;
  Nk: number;
  H: number;
  D: number;
  dtype: DType;
}

function checkInputs(engine: Engine, what: string, q: Tensor, k: Tensor, v: Tensor, heads: number): Dims {
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (t.rank !== 3) throw new Error(`${what}: ${name} must be (B, N, H·D), got ${t}`);
  }
  const [B, Nq, HD] = q.shape;
  const Nk = k.shape[1];
  if (k.shape.join() !== v.shape.join() || k.shape[0] !== B || k.shape[2] !== HD) {
    throw new Error(`${what}: shapes do not agree: q ${q}, k ${k}, v ${v}`);
  }
  if (!Number.isInteger(heads) || heads < 1 || HD % heads !== 0) {
    throw new Error(`${what}: ${HD} columns do not split into ${heads} heads`);
  }
  if (Nq === 0 || Nk === 0 || B === 0) throw new Error(`${what}: empty sequence in q ${q}, k ${k}`);
  const D = HD / heads;
  if (D > ATTENTION_MAX_HEAD_DIM) throw new Error(`${what}: head dim ${D} > ${ATTENTION_MAX_HEAD_DIM}`);
  const dtype = q.dtype;
  if (k.dtype !== dtype || v.dtype !== dtype) throw new Error(`${what}: mixed dtypes: q ${q}, k ${k}, v ${v}`);
  if (dtype === 'f16' && !engine.f16) {
    throw new Error(`${what}: f16 tensors need the 'shader-f16' feature, which this adapter lacks`);
  }
  return { B, Nq, Nk, H: heads, D, dtype };
}

const params = (s: Dims, options: AttentionOptions) => [
  u32(s.B),
  u32(s.Nq),
  u32(s.Nk),
  u32(s.H),
  f32(options.scale ?? 1 / Math.sqrt(s.D)),
  u32(options.causal ? 1 : 0),
];

// q: (B, Nq, H·D), k, v: (B, Nk, H·D) → o: (B, Nq, H·D) (q's dtype), lse: (B, H, Nq) f32
export function attentionForward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  options: AttentionOptions = {},
): { o: Tensor; lse: Tensor } {
  const s = checkInputs(engine, 'attention', q, k, v, heads);
  const o = engine.empty(q.shape, s.dtype);
  const lse = engine.empty([s.B, s.H, s.Nq]);
  // Batch items are independent: above the binding limit, run on views of a few at a time.
  forEachRowRange(engine, 'attention', s.B, [q, k, v, o, lse], (t, B) => {
    const prm = params({ ...s, B }, options);
    if (s.D > ATTENTION_WIDE_ABOVE) {
      const y = wideVariant(s.dtype, s.D);
      engine.dispatch(wideForwardKernel(y), t, grid(B * s.H * Math.ceil(s.Nq / y.r)), prm);
    } else {
      engine.dispatch(forwardKernel(variant(s.dtype, s.D)), t, grid(B * s.H * Math.ceil(s.Nq / WG)), prm);
    }
  });
  return { o, lse };
}

export interface AttentionGrads {
  dQ: Tensor | null;
  dK: Tensor | null;
  dV: Tensor | null;
}

// q, o, dO: (B, Nq, H·D), k, v: (B, Nk, H·D), lse: (B, H, Nq) from attentionForward
// → dQ like q, dK like k, dV like v; null where `wanted` says no.
export function attentionBackward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  dO: Tensor,
  heads: number,
  options: AttentionOptions = {},
  wanted: { q: boolean; k: boolean; v: boolean } = { q: true, k: true, v: true },
): AttentionGrads {
  const s = checkInputs(engine, 'attention backward', q, k, v, heads);
  if (dO.shape.join() !== q.shape.join() || o.shape.join() !== q.shape.join()) {
    throw new Error(`attention backward: dO ${dO} and o ${o} must be shaped like q ${q}`);
  }
  if (o.dtype !== s.dtype) throw new Error(`attention backward: o ${o} has another dtype than q ${q}`);
  if (lse.size !== s.B * s.H * s.Nq) throw new Error(`attention backward: lse ${lse} is not (B, H, Nq)`);
  const x = variant(s.dtype, s.D);
  const grads: AttentionGrads = { dQ: null, dK: null, dV: null };
  if (!wanted.q && !wanted.k && !wanted.v) return grads;
  const g = dO.dtype === s.dtype ? dO : engine.cast(dO, s.dtype);
  const delta = engine.empty([s.B, s.H, s.Nq]);
  const wide = s.D > ATTENTION_WIDE_ABOVE ? wideVariant(s.dtype, s.D) : null;
  const dQ = wanted.q ? engine.empty(q.shape, s.dtype) : null;
  // One pass yields both dK and dV; the one nobody asked for goes straight back to the pool.
  const dK = wanted.k || wanted.v ? engine.empty(k.shape, s.dtype) : null;
  const dV = dK ? engine.empty(v.shape, s.dtype) : null;
  const all = [q, k, v, g, lse, delta, o, ...[dQ, dK, dV].filter((t): t is Tensor => t !== null)];
  // Batch items are independent: above the binding limit, run on views of a few at a time.
  forEachRowRange(engine, 'attention backward', s.B, all, (t, B) => {
    const [tq, tk, tv, tg, tl, td, to] = t;
    const p = params({ ...s, B }, options);
    engine.dispatch(deltaKernel(x), [to, tg, td], grid1d(B * s.Nq * s.H, WG), p);
    const shared = [tq, tk, tv, tg, tl, td];
    let next = 7;
    if (dQ) {
      const out = t[next++];
      if (wide) {
        engine.dispatch(wideDqKernel(wide), [...shared, out], grid(B * s.H * Math.ceil(s.Nq / wide.r)), p);
      } else {
        engine.dispatch(dqKernel(x), [...shared, out], grid(B * s.H * Math.ceil(s.Nq / WG)), p);
      }
    }
    if (dK) {
      const outs = [t[next], t[next + 1]];
      if (wide) {
        engine.dispatch(wideDkvKernel(wide), [...shared, ...outs], grid(B * s.H * Math.ceil(s.Nk / wide.r)), p);
      } else {
        const keys = dkvKeys(s.Nk);
        engine.dispatch(dkvKernel(x, keys), [...shared, ...outs], grid(B * s.H * Math.ceil(s.Nk / keys)), p);
      }
    }
  });
  grads.dQ = dQ;
  if (dK && dV) {
    if (wanted.k) grads.dK = dK;
    else dK.dispose();
    if (wanted.v) grads.dV = dV;
    else dV.dispose();
  }
  delta.dispose();
  if (g !== dO) g.dispose();
  return grads;
}

// ------------------------------------------------------------------ naive reference kernels

const NAIVE_WG = 64;

// Both naive kernels: Params with the last field `flag`, f32 bindings `reads` then `write`,
// and main() with the flat invocation index in scope.
const naiveHead = (flag: string, reads: string[], write: string) => /* wgsl */ `
struct Params { B: u32, Na: u32, Nb: u32, H: u32, D: u32, scale: f32, ${flag}: u32 }
${bindings('f32', reads, [write])}
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${NAIVE_WG})
${ENTRY}`;

// a: (B, Na, H·D), b: (B, Nb, H·D) → s: (B, H, Na, Nb), s = scale · a_i·b_j (NEG where masked)
const naiveScoresKernel = defineKernel({
  name: 'attention_naive_scores',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `${naiveHead('causal', ['a', 'bm'], 's')}
  let idx = flatIndex(wid, nwg, lid, ${NAIVE_WG}u);
  if (idx >= p.B * p.H * p.Na * p.Nb) { return; }
  let j = idx % p.Nb;
  let t = idx / p.Nb;
  let i = t % p.Na;
  let bh = t / p.Na;
  let h = bh % p.H;
  let b = bh / p.H;
  if (p.causal != 0u && j > i) {
    s[idx] = ${NEG};
    return;
  }
  let hd = p.H * p.D;
  let ao = (b * p.Na + i) * hd + h * p.D;
  let bo = (b * p.Nb + j) * hd + h * p.D;
  var acc = 0.0;
  for (var c = 0u; c < p.D; c++) { acc += a[ao + c] * bm[bo + c]; }
  s[idx] = p.scale * acc;
}`,
});

// w: (B, H, Na, Nb) and
//   transpose = 0: x (B, Nb, H·D) → y (B, Na, H·D), y_i = scale Σ_j w_ij x_j
//   transpose = 1: x (B, Na, H·D) → y (B, Nb, H·D), y_j = scale Σ_i w_ij x_i
const naiveApplyKernel = defineKernel({
  name: 'attention_naive_apply',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `${naiveHead('transpose', ['w', 'x'], 'y')}
  let nOut = select(p.Na, p.Nb, p.transpose != 0u);
  let nSum = select(p.Nb, p.Na, p.transpose != 0u);
  let idx = flatIndex(wid, nwg, lid, ${NAIVE_WG}u);
  if (idx >= p.B * nOut * p.H * p.D) { return; }
  let c = idx % p.D;
  let t = idx / p.D;
  let h = t % p.H;
  let row = (t / p.H) % nOut;
  let b = t / (p.H * nOut);
  let hd = p.H * p.D;
  let wBase = (b * p.H + h) * p.Na * p.Nb;
  var acc = 0.0;
  for (var r = 0u; r < nSum; r++) {
    var wv: f32;
    if (p.transpose != 0u) { wv = w[wBase + r * p.Nb + row]; } else { wv = w[wBase + row * p.Nb + r]; }
    acc += wv * x[(b * nSum + r) * hd + h * p.D + c];
  }
  y[idx] = p.scale * acc;
}`,
});

function naiveScores(
  engine: Engine,
  a: Tensor,
  b: Tensor,
  s: Dims,
  nb: number,
  scale: number,
  causal: boolean,
): Tensor {
  const na = a.shape[1];
  const out = engine.empty([s.B, s.H, na, nb]);
  const prm = [u32(s.B), u32(na), u32(nb), u32(s.H), u32(s.D), f32(scale), u32(causal ? 1 : 0)];
  engine.dispatch(naiveScoresKernel, [a, b, out], grid1d(out.size, NAIVE_WG), prm);
  return out;
}

function naiveApply(engine: Engine, w: Tensor, x: Tensor, s: Dims, scale: number, transpose: boolean): Tensor {
  const [, , na, nb] = w.shape;
  const out = engine.empty([s.B, transpose ? nb : na, s.H * s.D]);
  const prm = [u32(s.B), u32(na), u32(nb), u32(s.H), u32(s.D), f32(scale), u32(transpose ? 1 : 0)];
  engine.dispatch(naiveApplyKernel, [w, x, out], grid1d(out.size, NAIVE_WG), prm);
  return out;
}

function checkNaive(engine: Engine, q: Tensor, k: Tensor, v: Tensor, heads: number): Dims {
  const s = checkInputs(engine, 'naive attention', q, k, v, heads);
  if (s.dtype !== 'f32') throw new Error(`naive attention: f32 only, got ${q}`);
  return s;
}

// Test reference: materialises (B, H, Nq, Nk) scores. q: (B, Nq, H·D), k, v: (B, Nk, H·D) → (B, Nq, H·D)
export function attentionNaiveForward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  options: AttentionOptions = {},
): Tensor {
  const s = checkNaive(engine, q, k, v, heads);
  const scale = options.scale ?? 1 / Math.sqrt(s.D);
  const scores = naiveScores(engine, q, k, s, s.Nk, scale, !!options.causal);
  const probs = softmaxForward(engine, scores);
  const o = naiveApply(engine, probs, v, s, 1, false);
  scores.dispose();
  probs.dispose();
  return o;
}

// Test reference: q, dO: (B, Nq, H·D), k, v: (B, Nk, H·D) → all three gradients
export function attentionNaiveBackward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dO: Tensor,
  heads: number,
  options: AttentionOptions = {},
): { dQ: Tensor; dK: Tensor; dV: Tensor } {
  const s = checkNaive(engine, q, k, v, heads);
  const scale = options.scale ?? 1 / Math.sqrt(s.D);
  const scores = naiveScores(engine, q, k, s, s.Nk, scale, !!options.causal);
  const probs = softmaxForward(engine, scores);
  const dP = naiveScores(engine, dO, v, s, s.Nk, 1, false);
  const dS = softmaxBackward(engine, probs, dP);
  const grads = {
    dQ: naiveApply(engine, dS, k, s, scale, false),
    dK: naiveApply(engine, dS, q, s, scale, true),
    dV: naiveApply(engine, probs, dO, s, 1, true),
  };
  for (const t of [scores, probs, dP, dS]) t.dispose();
  return grads;
}

/** Head dimensions of the SD 1.5 / 2.1 UNets, CLIP text encoders and the VAE, plus a small one for tests. */
export const ATTENTION_HEAD_DIMS = [8, 40, 64, 80, 160, 512] as const;

/** f32 kernels for the common head dims plus the naive ones (compile tests, benchmarks). */
export const attentionKernels: KernelDef[] = [
  ...ATTENTION_HEAD_DIMS.flatMap((d) => attentionKernelsFor('f32', d)),
  naiveScoresKernel,
  naiveApplyKernel,
];

/** The same for fp16 storage; they compile only where the adapter has 'shader-f16'. */
export const attentionF16Kernels: KernelDef[] = ATTENTION_HEAD_DIMS.flatMap((d) => attentionKernelsFor('f16', d));
