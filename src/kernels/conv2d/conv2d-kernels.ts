// WGSL forward and backward of 2-D convolution (NCHW, groups = 1), and their dispatch (no
// autograd here: see conv2d.ts). Three implementations of each pass:
// - naive: one invocation per output element, a direct loop — the GPU-side second reference;
// - direct (CPU adapters, conv2d-direct-kernels.ts): register-blocked loops straight from
//   global memory, no workgroup memory; dX split by stride phase;
// - tuned (GPUs): implicit GEMM with workgroup-memory tiles. The im2col matrix is never stored:
//   the tile loaders gather it from the NCHW tensor on the fly.
//     forward  Y[co, n]  = Σ_k W[co, k] · Xcol[k, n]       M = Cout, N = B·Ho·Wo, K = Cin·kh·kw
//     dX       dX[ci, n] = Σ_k Wt[ci, k] · dYcol[k, n]     M = Cin,  N = B·H·W,   K = Cout·kh·kw
//     dW       dW[co, k] = Σ_n dY[co, n] · Xcol[k, n]      M = Cout, N = Cin·kh·kw, K = B·Ho·Wo
//   dX is the transposed convolution written as a gather: an input pixel receives from the
//   outputs whose window covers it, i.e. oy = (iy + pad − ky) / stride where that divides.
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, grid1d, i32, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { activationDtype } from '../../engine/activation-dtype.ts';
import { weightStore, weightVariant, type WeightStore } from '../../engine/weight-variant.ts';
import { isSoftwareAdapter } from '../matmul/matmul-kernels.ts';
import { DIRECT_CO, DIRECT_DX_CI, DIRECT_PX, DIRECT_WG, directKernel, directKernels } from './conv2d-direct-kernels.ts';
import { convOutputSize, type ConvGeometry } from './conv2d-reference.ts';

export interface Conv2dPadding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

export interface Conv2dOptions {
  stride?: number;
  /** Zero padding on every side, or per side (the VAE's downsample pads bottom/right only). */
  padding?: number | Conv2dPadding;
}

/**
 * 'auto' (default) picks per adapter and shape (direct on CPU adapters; tuned, or naive for a
 * handful of channels, on GPUs); the others force one (tests, benchmarks).
 */
export type Conv2dImpl = 'auto' | 'naive' | 'tuned' | 'direct';

export interface Conv2dKernelOptions extends Conv2dOptions {
  impl?: Conv2dImpl;
  /** dW only: split the B·Ho·Wo reduction into (about) this many partial sums (default: heuristic). */
  splitK?: number;
}

const NAIVE_WG = 256;
const REDUCE_WG = 256;

// ------------------------------------------------------------------ geometry

// x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw)
export function conv2dGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dOptions = {},
): ConvGeometry {
  if (xShape.length !== 4) throw new Error(`conv2d: x must be (B, Cin, H, W), got [${xShape.join(',')}]`);
  if (wShape.length !== 4) throw new Error(`conv2d: weight must be (Cout, Cin, kh, kw), got [${wShape.join(',')}]`);
  const [B, Cin, H, W] = xShape;
  const [Cout, wCin, kh, kw] = wShape;
  if (wCin !== Cin) throw new Error(`conv2d: x has ${Cin} channels, weight expects ${wCin} (groups = 1 only)`);
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  const { top, bottom, left, right } = typeof pad === 'number' ? { top: pad, bottom: pad, left: pad, right: pad } : pad;
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`conv2d: stride must be a positive integer, got ${stride}`);
  if ([top, bottom, left, right].some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`conv2d: padding must be non-negative integers, got ${JSON.stringify(pad)}`);
  }
  const pads = { padTop: top, padBottom: bottom, padLeft: left, padRight: right };
  const g: ConvGeometry = { B, Cin, H, W, Cout, kh, kw, stride, ...pads };
  const { Ho, Wo } = convOutputSize(g);
  if (Ho < 1 || Wo < 1) throw new Error(`conv2d: ${kh}×${kw} kernel does not fit input ${H}×${W} with this padding`);
  return g;
}

// ------------------------------------------------------------------ WGSL shared pieces

const PARAMS = /* wgsl */ `
struct Params {
  B: u32, Cin: u32, H: u32, W: u32,
  Cout: u32, Ho: u32, Wo: u32, kh: u32,
  kw: u32, stride: u32, padTop: u32, padLeft: u32,
  M: u32, N: u32, K: u32, tilesN: u32,
  kChunk: u32, hasBias: u32, accumulate: u32, biasOffset: u32,
}`;

interface Gemm {
  M: number;
  N: number;
  K: number;
  tilesN: number;
  kChunk: number;
}

/** How a forward stores: y = or y += (split over input channels), bias from element biasOffset. */
interface ForwardStore {
  hasBias: boolean;
  accumulate: boolean;
  biasOffset: number;
}

const NO_STORE: ForwardStore = { hasBias: false, accumulate: false, biasOffset: 0 };

// Struct order of PARAMS.
function params(g: ConvGeometry, gemm: Gemm = { M: 0, N: 0, K: 0, tilesN: 0, kChunk: 0 }, s = NO_STORE) {
  const { Ho, Wo } = convOutputSize(g);
  return [
    u32(g.B), u32(g.Cin), u32(g.H), u32(g.W),
    u32(g.Cout), u32(Ho), u32(Wo), u32(g.kh),
    u32(g.kw), u32(g.stride), u32(g.padTop), u32(g.padLeft),
    u32(gemm.M), u32(gemm.N), u32(gemm.K), u32(gemm.tilesN),
    u32(gemm.kChunk), u32(s.hasBias ? 1 : 0), u32(s.accumulate ? 1 : 0), u32(s.biasOffset),
  ]; // prettier-ignore
}

// Input pixel read by output (oy, ox) through tap (ky, kx); zero outside the image.
const X_AT = /* wgsl */ `
fn xAt(b: u32, ci: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> f32 {
  let iy = i32(oy * p.stride + ky) - i32(p.padTop);
  let ix = i32(ox * p.stride + kx) - i32(p.padLeft);
  if (iy < 0 || ix < 0 || iy >= i32(p.H) || ix >= i32(p.W)) { return 0.0; }
  return x[((b * p.Cin + ci) * p.H + u32(iy)) * p.W + u32(ix)];
}`;

// Output gradient that input pixel (iy, ix) received through tap (ky, kx); zero where no
// output's window put that tap on this pixel (stride gaps, borders).
const DY_AT = /* wgsl */ `
fn dYAt(b: u32, co: u32, iy: u32, ix: u32, ky: u32, kx: u32) -> f32 {
  let ty = i32(iy + p.padTop) - i32(ky);
  let tx = i32(ix + p.padLeft) - i32(kx);
  if (ty < 0 || tx < 0) { return 0.0; }
  let oy = u32(ty) / p.stride;
  let ox = u32(tx) / p.stride;
  if (oy * p.stride != u32(ty) || ox * p.stride != u32(tx) || oy >= p.Ho || ox >= p.Wo) { return 0.0; }
  return dY[((b * p.Cout + co) * p.Ho + oy) * p.Wo + ox];
}`;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

type Mode = 'forward' | 'dx' | 'dw';

// Bindings per mode (storage order), for naive and tuned alike. The forward always binds a
// bias (the weight stands in when there is none, with hasBias = 0): one kernel instead of two
// is one compile fewer, and compiles are what software WebGPU is slowest at.
function bindings(mode: Mode): { decl: string; storage: KernelDef['storage'] } {
  const ro = (i: number, n: string) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`;
  const rw = (i: number, n: string) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`;
  const uni = (i: number) => `@group(0) @binding(${i}) var<uniform> p: Params;`;
  if (mode === 'forward') {
    return {
      decl: [ro(0, 'x'), ro(1, 'w'), ro(2, 'bias'), rw(3, 'y'), uni(4)].join('\n'),
      storage: ['read', 'read', 'read', 'write'],
    };
  }
  if (mode === 'dx')
    return { decl: [ro(0, 'dY'), ro(1, 'w'), rw(2, 'dX'), uni(3)].join('\n'), storage: ['read', 'read', 'write'] };
  return { decl: [ro(0, 'x'), ro(1, 'dY'), rw(2, 'dW'), uni(3)].join('\n'), storage: ['read', 'read', 'write'] };
}

const cache = new Map<string, KernelDef>();
const memo = (key: string, make: () => KernelDef): KernelDef => {
  let k = cache.get(key);
  if (!k) cache.set(key, (k = make()));
  return k;
};

// ------------------------------------------------------------------ naive kernels

// The naive kernels' common frame: one invocation per element i of `count`; `body` is the
// math for element i (gather helper `at`: X_AT or DY_AT).
const naiveKernel = (mode: Mode, name: string, at: string, count: string, body: string): KernelDef =>
  memo(`naive_${mode}`, () => {
    const b = bindings(mode);
    return defineKernel({
      name,
      storage: b.storage,
      uniforms: true,
      code: /* wgsl */ `${PARAMS}
${b.decl}
${WGSL_FLAT_INDEX}
${at}
@compute @workgroup_size(${NAIVE_WG})
${ENTRY} {
  let i = flatIndex(wid, nwg, lid, ${NAIVE_WG}u);
  if (i >= ${count}) { return; }
${body}
}`,
    });
  });

// y: (B, Cout, Ho, Wo), one invocation per output element.
const naiveForwardKernel = (): KernelDef =>
  naiveKernel(
    'forward',
    'conv2d_forward_naive',
    X_AT,
    'p.B * p.Cout * p.Ho * p.Wo',
    /* wgsl */ `  let ox = i % p.Wo;
  let oy = (i / p.Wo) % p.Ho;
  let co = (i / (p.Wo * p.Ho)) % p.Cout;
  let bi = i / (p.Wo * p.Ho * p.Cout);
  var s = select(0.0, bias[co + p.biasOffset], p.hasBias != 0u);
  for (var ci = 0u; ci < p.Cin; ci++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        s += w[((co * p.Cin + ci) * p.kh + ky) * p.kw + kx] * xAt(bi, ci, oy, ox, ky, kx);
      }
    }
  }
  if (p.accumulate != 0u) { s += y[i]; }
  y[i] = s;`,
  );

// dX: (B, Cin, H, W), one invocation per input element.
const naiveDxKernel = (): KernelDef =>
  naiveKernel(
    'dx',
    'conv2d_backward_input_naive',
    DY_AT,
    'p.B * p.Cin * p.H * p.W',
    /* wgsl */ `  let ix = i % p.W;
  let iy = (i / p.W) % p.H;
  let ci = (i / (p.W * p.H)) % p.Cin;
  let bi = i / (p.W * p.H * p.Cin);
  var s = 0.0;
  for (var co = 0u; co < p.Cout; co++) {
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        s += w[((co * p.Cin + ci) * p.kh + ky) * p.kw + kx] * dYAt(bi, co, iy, ix, ky, kx);
      }
    }
  }
  dX[i] = s;`,
  );

// dW: (Cout, Cin, kh, kw), one invocation per weight.
const naiveDwKernel = (): KernelDef =>
  naiveKernel(
    'dw',
    'conv2d_backward_weight_naive',
    X_AT,
    'p.Cout * p.Cin * p.kh * p.kw',
    /* wgsl */ `  let kx = i % p.kw;
  let ky = (i / p.kw) % p.kh;
  let ci = (i / (p.kw * p.kh)) % p.Cin;
  let co = i / (p.kw * p.kh * p.Cin);
  var s = 0.0;
  for (var bi = 0u; bi < p.B; bi++) {
    for (var oy = 0u; oy < p.Ho; oy++) {
      for (var ox = 0u; ox < p.Wo; ox++) {
        s += dY[((bi * p.Cout + co) * p.Ho + oy) * p.Wo + ox] * xAt(bi, ci, oy, ox, ky, kx);
      }
    }
  }
  dW[i] = s;`,
  );

// dBias: (Cout) = Σ over B, Ho, Wo of dY — one workgroup per channel, tree reduction.
const dBiasKernel = defineKernel({
  name: 'conv2d_backward_bias',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `${PARAMS}
@group(0) @binding(0) var<storage, read> dY: array<f32>;
@group(0) @binding(1) var<storage, read_write> dBias: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> part: array<f32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
${ENTRY} {
  let co = flatWorkgroup(wid, nwg);
  let hw = p.Ho * p.Wo;
  var s = 0.0;
  for (var j = lid; j < p.B * hw; j += ${REDUCE_WG}u) {
    s += dY[((j / hw) * p.Cout + co) * hw + j % hw];
  }
  part[lid] = s;
  workgroupBarrier();
  for (var h = ${REDUCE_WG / 2}u; h > 0u; h /= 2u) {
    if (lid < h) { part[lid] += part[lid + h]; }
    workgroupBarrier();
  }
  if (lid == 0u && co < p.Cout) { dBias[co] = part[0]; }
}`,
});

// dW: (Cout·Cin·kh·kw) = Σ_s part: (splits, Cout·Cin·kh·kw)
const splitSumKernel = defineKernel({
  name: 'conv2d_backward_weight_splitk_sum',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, splits: u32 }
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> dW: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${NAIVE_WG})
${ENTRY} {
  let i = flatIndex(wid, nwg, lid, ${NAIVE_WG}u);
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.splits; k++) { s += part[k * p.n + i]; }
  dW[i] = s;
}`,
});

// ------------------------------------------------------------------ tuned: implicit GEMM

// Output tile BM × BN per workgroup, reduction step BK; each invocation owns a 4 × 4 block
// (rows tm·4.., columns tn·4..) held in four vec4 accumulators.
const BM = 64;
const BN = 64;
const BK = 16;
const TM = 4;
const TN = 4;
const RM = BM / TM; // invocations along M
const RN = BN / TN;
const GEMM_WG = RM * RN;

// The gathers of each mode: A(m, k), B(k, n) (zero outside M×K / K×N) and the store of C(m, n).
function gemmAccess(mode: Mode): string {
  const guard = /* wgsl */ `
fn inA(m: u32, k: u32) -> bool { return m < p.M && k < p.K; }
fn inB(k: u32, n: u32) -> bool { return k < p.K && n < p.N; }`;
  if (mode === 'forward') {
    return /* wgsl */ `${guard}
${X_AT}
fn loadA(m: u32, k: u32) -> f32 {
  if (!inA(m, k)) { return 0.0; }
  return w[m * p.K + k];
}
fn loadB(k: u32, n: u32) -> f32 {
  if (!inB(k, n)) { return 0.0; }
  let khw = p.kh * p.kw;
  let r = k % khw;
  let q = n % (p.Ho * p.Wo);
  return xAt(n / (p.Ho * p.Wo), k / khw, q / p.Wo, q % p.Wo, r / p.kw, r % p.kw);
}
fn store(m: u32, n: u32, _split: u32, v: f32) {
  let hw = p.Ho * p.Wo;
  let i = ((n / hw) * p.Cout + m) * hw + n % hw;
  var s = v + select(0.0, bias[m + p.biasOffset], p.hasBias != 0u);
  if (p.accumulate != 0u) { s += y[i]; }
  y[i] = s;
}`;
  }
  if (mode === 'dx') {
    return /* wgsl */ `${guard}
${DY_AT}
fn loadA(m: u32, k: u32) -> f32 {
  if (!inA(m, k)) { return 0.0; }
  let khw = p.kh * p.kw;
  return w[((k / khw) * p.Cin + m) * khw + k % khw];
}
fn loadB(k: u32, n: u32) -> f32 {
  if (!inB(k, n)) { return 0.0; }
  let khw = p.kh * p.kw;
  let r = k % khw;
  let q = n % (p.H * p.W);
  return dYAt(n / (p.H * p.W), k / khw, q / p.W, q % p.W, r / p.kw, r % p.kw);
}
fn store(m: u32, n: u32, _split: u32, v: f32) {
  let hw = p.H * p.W;
  dX[((n / hw) * p.Cin + m) * hw + n % hw] = v;
}`;
  }
  return /* wgsl */ `${guard}
${X_AT}
fn loadA(m: u32, k: u32) -> f32 {
  if (!inA(m, k)) { return 0.0; }
  let hw = p.Ho * p.Wo;
  return dY[((k / hw) * p.Cout + m) * hw + k % hw];
}
fn loadB(k: u32, n: u32) -> f32 {
  if (!inB(k, n)) { return 0.0; }
  let khw = p.kh * p.kw;
  let r = n % khw;
  let q = k % (p.Ho * p.Wo);
  return xAt(k / (p.Ho * p.Wo), n / khw, q / p.Wo, q % p.Wo, r / p.kw, r % p.kw);
}
fn store(m: u32, n: u32, split: u32, v: f32) {
  dW[split * p.M * p.N + m * p.N + n] = v;
}`;
}

const LANES = ['x', 'y', 'z', 'w'];
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

// Register tiles are spelled out as vec4 variables rather than private arrays, and loop
// bounds are the live extents (a ragged last step or edge tile stops early) rather than
// constants: both keep llvmpipe (the software adapter) from unrolling the kernel into
// seconds of compile time, and vec4 is what a hardware compiler wants anyway.
const tunedKernel = (mode: Mode): KernelDef =>
  memo(`tuned_${mode}`, () => {
    const b = bindings(mode);
    const label = { forward: 'forward', dx: 'backward_input', dw: 'backward_weight' }[mode];
    return defineKernel({
      name: `conv2d_${label}_gemm`,
      storage: b.storage,
      uniforms: true,
      code: /* wgsl */ `${PARAMS}
${b.decl}
${WGSL_FLAT_INDEX}
${gemmAccess(mode)}
// Tiles stored k-major: As[kk][tm] holds rows tm·4.. of column kk, Bs[kk][tn] columns tn·4..
var<workgroup> As: array<vec4f, ${(BM * BK) / TM}>;
var<workgroup> Bs: array<vec4f, ${(BK * BN) / TN}>;
@compute @workgroup_size(${GEMM_WG})
${ENTRY} {
  // Workgroups enumerate (split, tileM, tileN) with tileN fastest.
  let tile = flatWorkgroup(wid, nwg);
  let tilesMN = p.tilesN * ((p.M + ${BM - 1}u) / ${BM}u);
  let split = tile / tilesMN;
  // grid() may round the workgroup count up; a spare workgroup must not store zeros.
  if (split >= (p.K + p.kChunk - 1u) / p.kChunk) { return; }
  let m0 = ((tile % tilesMN) / p.tilesN) * ${BM}u;
  let n0 = (tile % p.tilesN) * ${BN}u;
  let kBegin = split * p.kChunk;
  let kEnd = min(p.K, kBegin + p.kChunk);
  let tm = lid / ${RN}u;
  let tn = lid % ${RN}u;
${range(TM)
  .map((i) => `  var acc${i} = vec4f();`)
  .join('\n')}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${BK}u) {
    let kn = min(${BK}u, kEnd - k0);
    for (var g = lid; g < ${(BM * BK) / TM}u; g += ${GEMM_WG}u) {
      let kk = g % ${BK}u;
      let m = m0 + (g / ${BK}u) * ${TM}u;
      var v = vec4f();
      if (kk < kn && m < p.M) {
        for (var i = 0u; i < min(${TM}u, p.M - m); i++) { v[i] = loadA(m + i, k0 + kk); }
      }
      As[kk * ${RM}u + g / ${BK}u] = v;
    }
    for (var g = lid; g < ${(BK * BN) / TN}u; g += ${GEMM_WG}u) {
      let kk = g / ${RN}u;
      let n = n0 + (g % ${RN}u) * ${TN}u;
      var v = vec4f();
      if (kk < kn && n < p.N) {
        for (var j = 0u; j < min(${TN}u, p.N - n); j++) { v[j] = loadB(k0 + kk, n + j); }
      }
      Bs[g] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < kn; kk++) {
      let a = As[kk * ${RM}u + tm];
      let bv = Bs[kk * ${RN}u + tn];
${range(TM)
  .map((i) => `      acc${i} = fma(vec4f(a.${LANES[i]}), bv, acc${i});`)
  .join('\n')}
    }
    workgroupBarrier();
  }
  let m = m0 + tm * ${TM}u;
  let n = n0 + tn * ${TN}u;
  if (m < p.M && n < p.N) {
    for (var i = 0u; i < min(${TM}u, p.M - m); i++) {
      let row = ${range(TM - 1).reduce((e, i) => `select(${e}, acc${i + 1}, i == ${i + 1}u)`, 'acc0')};
      for (var j = 0u; j < min(${TN}u, p.N - n); j++) { store(m + i, n + j, split, row[j]); }
    }
  }
}`,
    });
  });

// Plan of a tuned GEMM dispatch: uniforms and workgroup count.
function planGemm(M: number, N: number, K: number, splits = 1) {
  const tilesN = Math.ceil(N / BN);
  // Whole BK steps per split, so only the last split sees a ragged end.
  const kChunk = Math.ceil(Math.ceil(K / splits) / BK) * BK;
  const used = Math.max(1, Math.ceil(K / kChunk));
  return { gemm: { M, N, K, tilesN, kChunk }, splits: used, workgroups: grid(Math.ceil(M / BM) * tilesN * used) };
}

// CPU adapters: the direct kernels, for every shape (measured on llvmpipe: forward, dX and dW
// ≈ 3–4× the tuned GEMM at 64 and 320 channels, ≥ 10× the naive loop at 4 channels in or
// out). GPUs: a GEMM tile of 64 rows over a handful of channels (image or latent in/out)
// computes mostly padding, so the naive loop serves those.
function pickImpl(engine: Engine, impl: Conv2dImpl | undefined, M: number): 'naive' | 'tuned' | 'direct' {
  if (impl && impl !== 'auto') return impl;
  if (isSoftwareAdapter(engine)) return 'direct';
  return M > 16 ? 'tuned' : 'naive';
}

// Struct order of DIRECT_PARAMS.
function directParams(g: ConvGeometry, blocksX: number, total: number, s = NO_STORE, rowsPerSplit = 0) {
  const { Ho, Wo } = convOutputSize(g);
  return [
    u32(g.B), u32(g.Cin), u32(g.H), u32(g.W),
    u32(g.Cout), u32(Ho), u32(Wo), u32(g.kh),
    u32(g.kw), u32(g.stride), i32(g.padTop), i32(g.padLeft),
    u32(blocksX), u32(total), u32(s.hasBias ? 1 : 0), u32(rowsPerSplit),
    u32(s.accumulate ? 1 : 0), u32(s.biasOffset),
  ]; // prettier-ignore
}

const k3s1 = (g: ConvGeometry) => g.kw === 3 && g.stride === 1;
const blocks = (n: number, per: number) => Math.ceil(n / per);

// Direct dW: rows (b, oy) split so that at least ~2048 invocations run (two CPU cores, 8-wide
// SIMD each, want many); partial sums cost a (splits × |dW|) buffer and a summing pass.
function defaultDirectSplit(invocations: number, rows: number): number {
  return Math.max(1, Math.min(32, rows, Math.floor(2048 / invocations)));
}

// Few output tiles but a long reduction (dW of early layers: Cin·kh·kw small, B·Ho·Wo large)
// would leave most of the device idle; partial sums over K ranges fill it, at the cost of one
// (splits × |dW|) buffer and a summing pass.
function defaultSplitK(M: number, N: number, K: number): number {
  const tiles = Math.ceil(M / BM) * Math.ceil(N / BN);
  if (tiles >= 32) return 1;
  return Math.max(1, Math.min(32, Math.ceil(64 / tiles), Math.floor(K / 512)));
}

// ------------------------------------------------------------------ dispatch

/** Partial sums of dW the binding limit allows at once (the (splits, |dW|) buffer is bound whole). */
const maxSplits = (engine: Engine, dWSize: number) => Math.max(1, Math.floor(engine.maxBindingBytes / (dWSize * 4)));

const checkF32 = (what: string, ...ts: (Tensor | null)[]) => {
  for (const t of ts) if (t && t.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${t}`);
};

// The weight (binding `w`) and the bias may be fp16 — frozen weights kept at half size — and
// are then read through weight-variant.ts's accessor. Activations x and y are f32, or fp16 at
// inference (activationDtype; half-storage.ts rewrites their bindings); gradients are f32.
const checkWeight = (what: string, w: Tensor) => {
  if (w.dtype !== 'f32' && w.dtype !== 'f16') throw new Error(`${what}: f32 or f16 weight only, got ${w}`);
};

// x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw), bias: (Cout) | null → y: (B, Cout, Ho, Wo),
// in x's dtype.
export function conv2dForward(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  opts: Conv2dKernelOptions = {},
): Tensor {
  const dtype = activationDtype('conv2d', x);
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  const { Ho, Wo } = convOutputSize(g);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.Cout))
    throw new Error(`conv2d: bias ${bias} for ${g.Cout} channels`);
  const y = engine.empty([g.B, g.Cout, Ho, Wo], dtype);
  conv2dForwardInto(engine, x, weight, bias, y, opts);
  return y;
}

export interface Conv2dIntoOptions extends Conv2dKernelOptions {
  /** y += conv instead of y = conv: the blocks of a split over input channels sum in place. */
  accumulate?: boolean;
  /** The bias of output channel co is bias[biasOffset + co] (a block of output channels). */
  biasOffset?: number;
}

// x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw), bias: (≥ biasOffset + Cout) | null,
// y: (B, Cout, Ho, Wo) in x's dtype (a view into a bigger output, in the split).
export function conv2dForwardInto(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  y: Tensor,
  opts: Conv2dIntoOptions = {},
): void {
  activationDtype('conv2d', x, y);
  checkWeight('conv2d', weight);
  if (bias) checkWeight('conv2d bias', bias);
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  const biasOffset = opts.biasOffset ?? 0;
  if (bias && (bias.rank !== 1 || bias.shape[0] < biasOffset + g.Cout))
    throw new Error(`conv2d: bias ${bias} for ${g.Cout} channels from ${biasOffset}`);
  const { Ho, Wo } = convOutputSize(g);
  const want = [g.B, g.Cout, Ho, Wo];
  if (y.shape.join() !== want.join()) throw new Error(`conv2d: output ${y}, expected [${want.join(',')}]`);
  const store: ForwardStore = { hasBias: !!bias, accumulate: !!opts.accumulate, biasOffset };
  const k = (kernel: KernelDef) =>
    weightVariant(
      weightVariant(kernel, 'w', weightStore(engine, weight)),
      'bias',
      bias ? weightStore(engine, bias) : null,
    );
  const buffers = [x, weight, bias ?? weight, y];
  const impl = pickImpl(engine, opts.impl, g.Cout);
  if (impl === 'direct') {
    const blocksX = blocks(Wo, DIRECT_PX);
    const total = blocksX * Ho * g.B * blocks(g.Cout, DIRECT_CO);
    engine.dispatch(
      k(directKernel('forward', k3s1(g))),
      buffers,
      grid1d(total, DIRECT_WG),
      directParams(g, blocksX, total, store),
    );
  } else if (impl === 'tuned') {
    const plan = planGemm(g.Cout, g.B * Ho * Wo, g.Cin * g.kh * g.kw);
    engine.dispatch(k(tunedKernel('forward')), buffers, plan.workgroups, params(g, plan.gemm, store));
  } else {
    engine.dispatch(k(naiveForwardKernel()), buffers, grid1d(y.size, NAIVE_WG), params(g, undefined, store));
  }
}

// dY: (B, Cout, Ho, Wo), weight: (Cout, Cin, kh, kw) → dX: xShape = (B, Cin, H, W)
export function conv2dBackwardInput(
  engine: Engine,
  xShape: readonly number[],
  weight: Tensor,
  dY: Tensor,
  opts: Conv2dKernelOptions = {},
): Tensor {
  checkF32('conv2d backward', dY);
  checkWeight('conv2d backward', weight);
  const w = (k: KernelDef) => weightVariant(k, 'w', weightStore(engine, weight));
  const g = conv2dGeometry(xShape, weight.shape, opts);
  checkDy(g, dY);
  const dX = engine.empty(xShape);
  const impl = pickImpl(engine, opts.impl, g.Cin);
  if (impl === 'direct') {
    const blocksX = blocks(blocks(g.W, g.stride), DIRECT_PX);
    const total = blocksX * g.stride * g.H * g.B * blocks(g.Cin, DIRECT_DX_CI);
    engine.dispatch(
      w(directKernel('dx', k3s1(g))),
      [dY, weight, dX],
      grid1d(total, DIRECT_WG),
      directParams(g, blocksX, total),
    );
  } else if (impl === 'tuned') {
    const plan = planGemm(g.Cin, g.B * g.H * g.W, g.Cout * g.kh * g.kw);
    engine.dispatch(w(tunedKernel('dx')), [dY, weight, dX], plan.workgroups, params(g, plan.gemm));
  } else {
    engine.dispatch(w(naiveDxKernel()), [dY, weight, dX], grid1d(dX.size, NAIVE_WG), params(g));
  }
  return dX;
}

// x: (B, Cin, H, W), dY: (B, Cout, Ho, Wo) → dW: wShape = (Cout, Cin, kh, kw)
export function conv2dBackwardWeight(
  engine: Engine,
  x: Tensor,
  wShape: readonly number[],
  dY: Tensor,
  opts: Conv2dKernelOptions = {},
): Tensor {
  checkF32('conv2d backward', x, dY);
  const g = conv2dGeometry(x.shape, wShape, opts);
  checkDy(g, dY);
  const dW = engine.empty(wShape);
  const impl = pickImpl(engine, opts.impl, g.Cout);
  if (impl === 'naive') {
    engine.dispatch(naiveDwKernel(), [x, dY, dW], grid1d(dW.size, NAIVE_WG), params(g));
    return dW;
  }
  const { Ho, Wo } = convOutputSize(g);
  if (impl === 'direct') {
    const k33s1 = g.kh === 3 && g.kw === 3 && g.stride === 1;
    // Invocations per split: (co block, n block of 4) or, for 3×3 stride 1, (co block, ci).
    const blocksX = k33s1 ? g.Cin : blocks(g.Cin * g.kh * g.kw, 4);
    const perSplit = blocksX * blocks(g.Cout, DIRECT_CO);
    const rows = g.B * Ho;
    const wanted = opts.splitK ?? defaultDirectSplit(perSplit, rows);
    const rowsPerSplit = Math.ceil(rows / Math.min(wanted, maxSplits(engine, dW.size)));
    const splits = Math.ceil(rows / rowsPerSplit);
    const total = perSplit * splits;
    const out = splits === 1 ? dW : engine.empty([splits, dW.size]);
    const p = directParams(g, blocksX, total, NO_STORE, rowsPerSplit);
    engine.dispatch(directKernel('dw', k33s1), [x, dY, out], grid1d(total, DIRECT_WG), p);
    if (splits > 1) {
      engine.dispatch(splitSumKernel, [out, dW], grid1d(dW.size, NAIVE_WG), [u32(dW.size), u32(splits)]);
      out.dispose();
    }
    return dW;
  }
  const [M, N, K] = [g.Cout, g.Cin * g.kh * g.kw, g.B * Ho * Wo];
  const plan = planGemm(M, N, K, Math.min(opts.splitK ?? defaultSplitK(M, N, K), maxSplits(engine, dW.size)));
  if (plan.splits === 1) {
    engine.dispatch(tunedKernel('dw'), [x, dY, dW], plan.workgroups, params(g, plan.gemm));
    return dW;
  }
  const part = engine.empty([plan.splits, dW.size]);
  engine.dispatch(tunedKernel('dw'), [x, dY, part], plan.workgroups, params(g, plan.gemm));
  engine.dispatch(splitSumKernel, [part, dW], grid1d(dW.size, NAIVE_WG), [u32(dW.size), u32(plan.splits)]);
  part.dispose();
  return dW;
}

// dY: (B, Cout, Ho, Wo) → dBias: (Cout)
export function conv2dBackwardBias(engine: Engine, dY: Tensor): Tensor {
  checkF32('conv2d backward', dY);
  if (dY.rank !== 4) throw new Error(`conv2d backward: dY must be (B, Cout, Ho, Wo), got ${dY}`);
  const [B, Cout, Ho, Wo] = dY.shape;
  const g: ConvGeometry = {
    B,
    Cin: 1,
    H: Ho,
    W: Wo,
    Cout,
    kh: 1,
    kw: 1,
    stride: 1,
    padTop: 0,
    padBottom: 0,
    padLeft: 0,
    padRight: 0,
  };
  const dBias = engine.empty([Cout]);
  engine.dispatch(dBiasKernel, [dY, dBias], grid(Cout), params(g));
  return dBias;
}

function checkDy(g: ConvGeometry, dY: Tensor): void {
  const { Ho, Wo } = convOutputSize(g);
  const want = [g.B, g.Cout, Ho, Wo];
  if (dY.shape.join() !== want.join()) throw new Error(`conv2d backward: dY ${dY}, expected [${want.join(',')}]`);
}

export const conv2dKernels: KernelDef[] = [
  naiveForwardKernel(),
  naiveDxKernel(),
  naiveDwKernel(),
  dBiasKernel,
  splitSumKernel,
  tunedKernel('forward'),
  tunedKernel('dx'),
  tunedKernel('dw'),
  ...directKernels(),
];

/** The kernels that read the weight (forward, dX), as they read an fp16 weight in `store`. */
export const conv2dWeightKernels = (store: WeightStore): KernelDef[] =>
  [
    naiveForwardKernel(),
    naiveDxKernel(),
    tunedKernel('forward'),
    tunedKernel('dx'),
    directKernel('forward'),
    directKernel('forward', true),
    directKernel('dx'),
    directKernel('dx', true),
  ].map((k) => weightVariant(k, 'w', store));
