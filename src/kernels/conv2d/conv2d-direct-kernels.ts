// "Direct" conv2d kernels for CPU adapters (llvmpipe/lavapipe, SwiftShader): register-blocked
// loops straight from global memory, no workgroup memory — the approach that won for matmul
// there (a CPU's caches already do what workgroup memory does on a GPU; staging only adds
// copies and barriers). Dispatch and kernel choice live in conv2d-kernels.ts.
//  - forward: an invocation computes y[b, co, oy, ox0 … ox0+PX−1] for CO channels co0 …, so
//    every input value loaded feeds CO FMAs and every weight loaded feeds PX.
//  - dX: the transposed convolution as a gather, DX_CI input channels × PX pixels per
//    invocation, split by output phase: the PX pixels ix = (qx0 + j)·s + rx of row iy all
//    have phase rx, so only the taps with ky ≡ iy + pt and kx ≡ rx + pl (mod s) reach them —
//    no multiplications by the zeros a stride leaves between outputs (3/4 of the taps at
//    stride 2), and no integer division inside the loops.
//  - dW: a CO × 4 block of dW[co, (ci, ky, kx)], reducing over (b, oy, ox) four output
//    columns at a time; optionally over a range of rows only (split-K, summed afterwards).
// Stride 1 with kw = 3 (every UNet/VAE 3×3 conv) has its own bodies: forward/dX read one row
// segment of PX + 2 values for all three kx taps instead of 3·PX separate loads; dW (kh = 3
// too) owns all nine taps of one input channel, reading three such segments per step.
// Out-of-range channels read a clamped (valid) index rather than branching; their results are
// never stored. Out-of-image pixels read a clamped index and are zeroed with select().
import { defineKernel, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';

/** Output channels per invocation (forward, dW). */
export const DIRECT_CO = 4;
/**
 * Input channels per dX invocation: 8 × 8 accumulators spill on an AVX2 CPU, yet measured
 * ≈ 20 % faster than 4 on llvmpipe (the forward gains nothing from 8).
 */
export const DIRECT_DX_CI = 8;
/** Pixels per invocation (forward, dX). */
export const DIRECT_PX = 8;
export const DIRECT_WG = 64;

export type DirectMode = 'forward' | 'dx' | 'dw';

// Struct order of directParams() in conv2d-kernels.ts.
export const DIRECT_PARAMS = /* wgsl */ `
struct Params {
  B: u32, Cin: u32, H: u32, W: u32,
  Cout: u32, Ho: u32, Wo: u32, kh: u32,
  kw: u32, stride: u32, padTop: i32, padLeft: i32,
  blocksX: u32, total: u32, hasBias: u32, rowsPerSplit: u32,
  accumulate: u32, biasOffset: u32,
}`;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const H4 = range(DIRECT_PX / 4); // vec4 groups of pixels
const CI = range(DIRECT_CO);
const CI_DX = range(DIRECT_DX_CI);
const PXI = range(DIRECT_PX);

// Lane j of vec4 group h is pixel 4h + j.
const px = (name: (j: number) => string, h: number) =>
  `vec4f(${range(4)
    .map((j) => name(4 * h + j))
    .join(', ')})`;

const ro = (i: number, n: string) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`;
const rw = (i: number, n: string) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`;
const uni = (i: number) => `@group(0) @binding(${i}) var<uniform> p: Params;`;

// Value `ix` of row `row` of `arr` (width `lim`), zero outside [0, lim).
const LOADER = (fn: string, arr: string, lim: string) => /* wgsl */ `
fn ${fn}(row: u32, ix: i32) -> f32 {
  let v = ${arr}[row + u32(clamp(ix, 0, i32(${lim}) - 1))];
  return select(0.0, v, ix >= 0 && ix < i32(${lim}));
}`;

// What y already holds where the forward accumulates (a split over input channels), else 0.
const Y_PREV = /* wgsl */ `
fn yPrev(i: u32) -> f32 {
  if (p.accumulate != 0u) { return y[i]; }
  return 0.0;
}`;

// The frame every direct kernel shares: its bindings and row loaders, and one invocation g
// per work item below p.total; `body` is the kernel's own math.
const directFrame = (bindings: string[], loaders: string[], body: string) => /* wgsl */ `${DIRECT_PARAMS}
${bindings.join('\n')}
${WGSL_FLAT_INDEX}
${loaders.join('\n')}
@compute @workgroup_size(${DIRECT_WG})
${ENTRY} {
  let g = flatIndex(wid, nwg, lid, ${DIRECT_WG}u);
  if (g >= p.total) { return; }
${body}
}`;

const accDecl = (init: (i: number) => string, ch = CI) =>
  ch.flatMap((i) => H4.map((h) => `  var acc${i}_${h} = vec4f(${init(i)});`)).join('\n');

// acc[i] += w_i(kx) · (PX input values); `val(j)` names input pixel j for this tap.
const fmaBlock = (w: (i: number) => string, val: (j: number) => string, indent: string, ch = CI) =>
  ch
    .flatMap((i) => H4.map((h) => `${indent}acc${i}_${h} = fma(vec4f(${w(i)}), ${px(val, h)}, acc${i}_${h});`))
    .join('\n');

// Body of one (channel, ky) row for a kw = 3, stride-1 kernel: a segment of PX + 2 values
// serves all three taps. `seg0` is the column of segment value 0; tap kx reads value j + off(kx).
function k3s1Body(
  ld: string,
  row: string,
  seg0: string,
  wAt: (i: number, kx: number) => string,
  off: (kx: number) => number,
  ch = CI,
) {
  const indent = '      ';
  const segs = range(DIRECT_PX + 2)
    .map((t) => `${indent}let s${t} = ${ld}(${row}, ${seg0} + ${t});`)
    .join('\n');
  const taps = range(3)
    .map((kx) => {
      const ws = ch.map((i) => `${indent}let w${i}k${kx} = ${wAt(i, kx)};`).join('\n');
      return `${ws}\n${fmaBlock(
        (i) => `w${i}k${kx}`,
        (j) => `s${j + off(kx)}`,
        indent,
        ch,
      )}`;
    })
    .join('\n');
  return `${segs}\n${taps}`;
}

// y: (B, Cout, Ho, Wo); invocations enumerate (co block, b, oy, ox block), ox block fastest.
function forwardCode(k3s1: boolean): string {
  const wAt = (i: number, kx: string | number) => `w[wr${i} + wk + ${kx}]`;
  const generic = `      for (var kx = 0u; kx < p.kw; kx++) {
        let ix = ixBase + i32(kx);
${PXI.map((j) => `        let v${j} = ldx(row, ix + ${j} * si);`).join('\n')}
${CI.map((i) => `        let w${i} = ${wAt(i, 'kx')};`).join('\n')}
${fmaBlock(
  (i) => `w${i}`,
  (j) => `v${j}`,
  '        ',
)}
      }`;
  const body = k3s1
    ? k3s1Body(
        'ldx',
        'row',
        'ixBase',
        (i, kx) => wAt(i, `${kx}u`),
        (kx) => kx,
      )
    : generic;
  return directFrame(
    [ro(0, 'x'), ro(1, 'w'), ro(2, 'bias'), rw(3, 'y'), uni(4)],
    [LOADER('ldx', 'x', 'p.W'), Y_PREV],
    /* wgsl */ `  let ox0 = (g % p.blocksX) * ${DIRECT_PX}u;
  var r = g / p.blocksX;
  let oy = r % p.Ho;
  r = r / p.Ho;
  let b = r % p.B;
  let co0 = (r / p.B) * ${DIRECT_CO}u;
  let ckk = p.Cin * p.kh * p.kw;
${CI.map((i) => `  let wr${i} = min(co0 + ${i}u, p.Cout - 1u) * ckk;`).join('\n')}
${CI.map((i) => `  let bias${i} = select(0.0, bias[min(co0 + ${i}u, p.Cout - 1u) + p.biasOffset], p.hasBias != 0u);`).join('\n')}
${accDecl((i) => `bias${i}`)}
  let si = i32(p.stride);
  let ixBase = i32(ox0 * p.stride) - p.padLeft;
  let hw = p.H * p.W;
  for (var ci = 0u; ci < p.Cin; ci++) {
    let xc = (b * p.Cin + ci) * hw;
    for (var ky = 0u; ky < p.kh; ky++) {
      let iy = i32(oy * p.stride + ky) - p.padTop;
      if (iy < 0 || iy >= i32(p.H)) { continue; }
      let row = xc + u32(iy) * p.W;
      let wk = (ci * p.kh + ky) * p.kw;
${body}
    }
  }
${CI.map(
  (i) => `  if (co0 + ${i}u < p.Cout) {
    let o = ((b * p.Cout + co0 + ${i}u) * p.Ho + oy) * p.Wo + ox0;
${PXI.map((j) => `    if (ox0 + ${j}u < p.Wo) { y[o + ${j}u] = acc${i}_${j >> 2}[${j & 3}] + yPrev(o + ${j}u); }`).join('\n')}
  }`,
).join('\n')}`,
  );
}

// dX: (B, Cin, H, W); invocations enumerate (ci block, b, iy, phase rx, block of PX columns of
// that phase), the column block fastest. Pixel j is ix = (qx0 + j)·s + rx.
function dxCode(k3s1: boolean): string {
  const wAt = (i: number, kx: string | number) => `w[wco + wc${i} + wk + ${kx}]`;
  const generic = `      var oxb = oxFirst;
      for (var kx = kx0; kx < p.kw; kx += p.stride) {
${PXI.map((j) => `        let v${j} = ldy(row, oxb + ${j});`).join('\n')}
${CI_DX.map((i) => `        let w${i} = ${wAt(i, 'kx')};`).join('\n')}
${fmaBlock(
  (i) => `w${i}`,
  (j) => `v${j}`,
  '        ',
  CI_DX,
)}
        oxb -= 1;
      }`;
  // Stride 1: tap kx reads output column qx0 + j + pl − kx = segment value j + 2 − kx.
  const body = k3s1
    ? k3s1Body(
        'ldy',
        'row',
        'i32(qx0) + p.padLeft - 2',
        (i, kx) => wAt(i, `${kx}u`),
        (kx) => 2 - kx,
        CI_DX,
      )
    : generic;
  return directFrame(
    [ro(0, 'dY'), ro(1, 'w'), rw(2, 'dX'), uni(3)],
    [LOADER('ldy', 'dY', 'p.Wo')],
    /* wgsl */ `  let qx0 = (g % p.blocksX) * ${DIRECT_PX}u;
  var r = g / p.blocksX;
  let rx = r % p.stride;
  r = r / p.stride;
  let iy = r % p.H;
  r = r / p.H;
  let b = r % p.B;
  let ci0 = (r / p.B) * ${DIRECT_DX_CI}u;
  let khw = p.kh * p.kw;
${CI_DX.map((i) => `  let wc${i} = min(ci0 + ${i}u, p.Cin - 1u) * khw;`).join('\n')}
${accDecl(() => '', CI_DX)}
  let si = i32(p.stride);
  // The first taps that land on this row / these columns; then every s-th.
  let ky0 = u32(i32(iy) + p.padTop) % p.stride;
  let kx0 = u32(i32(rx) + p.padLeft) % p.stride;
  let howo = p.Ho * p.Wo;
  // Output row / first output column read by taps ky0 / kx0; each further tap (s on) reads
  // one row / column earlier. Exact divisions: iy + pt − ky0 ≡ 0 and rx + pl − kx0 ≡ 0
  // (mod s), both ≥ 0. Kept out of the loops: integer division is not vectorised on a CPU.
  let oyFirst = (i32(iy) + p.padTop - i32(ky0)) / si;
  let oxFirst = i32(qx0) + (i32(rx) + p.padLeft - i32(kx0)) / si;
  for (var co = 0u; co < p.Cout; co++) {
    let dyc = (b * p.Cout + co) * howo;
    let wco = co * p.Cin * khw;
    var oy = oyFirst;
    for (var ky = ky0; ky < p.kh && oy >= 0; ky += p.stride) {
      if (oy < i32(p.Ho)) {
        let row = dyc + u32(oy) * p.Wo;
        let wk = ky * p.kw;
${body}
      }
      oy -= 1;
    }
  }
${CI_DX.map(
  (i) => `  if (ci0 + ${i}u < p.Cin) {
    let o = ((b * p.Cin + ci0 + ${i}u) * p.H + iy) * p.W;
${PXI.map(
  (j) => `    { let ix = (qx0 + ${j}u) * p.stride + rx; if (ix < p.W) { dX[o + ix] = acc${i}_${j >> 2}[${j & 3}]; } }`,
).join('\n')}
  }`,
).join('\n')}`,
  );
}

// dW: (splits, Cout, Cin·kh·kw); invocations enumerate (split, co block, n block of 4), n
// fastest; split s sums rows (b, oy) in [s·rowsPerSplit, (s+1)·rowsPerSplit).
function dwCode(): string {
  const C = range(4);
  return directFrame(
    [ro(0, 'x'), ro(1, 'dY'), rw(2, 'dW'), uni(3)],
    [LOADER('ldx', 'x', 'p.W'), LOADER('ldy', 'dY', 'p.Wo')],
    /* wgsl */ `  let khw = p.kh * p.kw;
  let N = p.Cin * khw;
  let nb = (g % p.blocksX) * 4u;
  var r = g / p.blocksX;
  let mBlocks = (p.Cout + ${DIRECT_CO - 1}u) / ${DIRECT_CO}u;
  let co0 = (r % mBlocks) * ${DIRECT_CO}u;
  let split = r / mBlocks;
${C.map(
  (c) => `  let n${c} = min(nb + ${c}u, N - 1u);
  let xo${c} = (n${c} / khw) * p.H * p.W;
  let ky${c} = (n${c} % khw) / p.kw;
  let kx${c} = i32(n${c} % p.kw) - p.padLeft;`,
).join('\n')}
${CI.map((i) => `  let coc${i} = min(co0 + ${i}u, p.Cout - 1u);`).join('\n')}
${CI.map((i) => `  var acc${i} = vec4f();`).join('\n')}
  let si = i32(p.stride);
  let rowBegin = split * p.rowsPerSplit;
  let rowEnd = min(p.B * p.Ho, rowBegin + p.rowsPerSplit);
  for (var rr = rowBegin; rr < rowEnd; rr++) {
    let b = rr / p.Ho;
    let oy = rr % p.Ho;
${CI.map((i) => `    let dyr${i} = ((b * p.Cout + coc${i}) * p.Ho + oy) * p.Wo;`).join('\n')}
    let xb = b * p.Cin * p.H * p.W;
${C.map(
  (c) => `    let iy${c} = i32(oy * p.stride + ky${c}) - p.padTop;
    let ok${c} = iy${c} >= 0 && iy${c} < i32(p.H);
    let xr${c} = xb + xo${c} + u32(clamp(iy${c}, 0, i32(p.H) - 1)) * p.W;`,
).join('\n')}
    for (var ox = 0u; ox < p.Wo; ox += 4u) {
${CI.map(
  (i) =>
    `      let a${i} = vec4f(${range(4)
      .map((j) => `ldy(dyr${i}, i32(ox + ${j}u))`)
      .join(', ')});`,
).join('\n')}
      let ix = i32(ox) * si;
${C.map(
  (c) =>
    `      let b${c} = select(vec4f(), vec4f(${range(4)
      .map((j) => `ldx(xr${c}, ix + kx${c} + ${j} * si)`)
      .join(', ')}), ok${c});`,
).join('\n')}
${range(4)
  .map(
    (j) =>
      `      let t${j} = vec4f(b0[${j}], b1[${j}], b2[${j}], b3[${j}]);\n` +
      CI.map((i) => `      acc${i} = fma(vec4f(a${i}[${j}]), t${j}, acc${i});`).join('\n'),
  )
  .join('\n')}
    }
  }
  let base = split * p.Cout * N;
${CI.map(
  (i) => `  if (co0 + ${i}u < p.Cout) {
    let o = base + (co0 + ${i}u) * N + nb;
${C.map((c) => `    if (nb + ${c}u < N) { dW[o + ${c}u] = acc${i}[${c}]; }`).join('\n')}
  }`,
).join('\n')}`,
  );
}

/** Output columns per step of the 3×3 stride-1 dW kernel. */
const DW_PX = 4;

// dW for kh = kw = 3, stride 1: an invocation owns all nine taps of one input channel for
// CO output channels (accumulator vec4s over co, one per tap), so each step of DW_PX output
// columns loads CO·DW_PX gradients and three row segments of DW_PX + 2 inputs for 9·CO·DW_PX
// FMAs. Invocations enumerate (split, co block, ci), ci fastest.
function dw33s1Code(): string {
  const J = range(DW_PX);
  const K3 = range(3);
  return directFrame(
    [ro(0, 'x'), ro(1, 'dY'), rw(2, 'dW'), uni(3)],
    [LOADER('ldx', 'x', 'p.W'), LOADER('ldy', 'dY', 'p.Wo')],
    /* wgsl */ `  let ci = g % p.Cin;
  var r = g / p.Cin;
  let mBlocks = (p.Cout + ${DIRECT_CO - 1}u) / ${DIRECT_CO}u;
  let co0 = (r % mBlocks) * ${DIRECT_CO}u;
  let split = r / mBlocks;
${CI.map((i) => `  let coc${i} = min(co0 + ${i}u, p.Cout - 1u);`).join('\n')}
${K3.flatMap((ky) => K3.map((kx) => `  var acc${ky}${kx} = vec4f();`)).join('\n')}
  let rowBegin = split * p.rowsPerSplit;
  let rowEnd = min(p.B * p.Ho, rowBegin + p.rowsPerSplit);
  for (var rr = rowBegin; rr < rowEnd; rr++) {
    let b = rr / p.Ho;
    let oy = rr % p.Ho;
${CI.map((i) => `    let dyr${i} = ((b * p.Cout + coc${i}) * p.Ho + oy) * p.Wo;`).join('\n')}
    let xc = (b * p.Cin + ci) * p.H * p.W;
    for (var ox = 0u; ox < p.Wo; ox += ${DW_PX}u) {
${J.map((j) => `      let d${j} = vec4f(${CI.map((i) => `ldy(dyr${i}, i32(ox + ${j}u))`).join(', ')});`).join('\n')}
      let ixb = i32(ox) - p.padLeft;
${K3.map(
  (ky) => `      {
        let iy = i32(oy + ${ky}u) - p.padTop;
        if (iy >= 0 && iy < i32(p.H)) {
          let row = xc + u32(iy) * p.W;
${range(DW_PX + 2)
  .map((t) => `          let s${t} = ldx(row, ixb + ${t});`)
  .join('\n')}
${K3.map((kx) => J.map((j) => `          acc${ky}${kx} = fma(d${j}, vec4f(s${j + kx}), acc${ky}${kx});`).join('\n')).join('\n')}
        }
      }`,
).join('\n')}
    }
  }
  let N = p.Cin * 9u;
  let base = split * p.Cout * N + ci * 9u;
${CI.map(
  (i) => `  if (co0 + ${i}u < p.Cout) {
    let o = base + (co0 + ${i}u) * N;
${K3.flatMap((ky) => K3.map((kx) => `    dW[o + ${ky * 3 + kx}u] = acc${ky}${kx}[${i}];`)).join('\n')}
  }`,
).join('\n')}`,
  );
}

const cache = new Map<string, KernelDef>();

/**
 * The direct kernel for `mode`. `special`: the stride-1 body for kw = 3 (forward, dX) or
 * kh = kw = 3 (dW).
 */
export function directKernel(mode: DirectMode, special = false): KernelDef {
  const suffix = special ? (mode === 'dw' ? '_k33s1' : '_k3s1') : '';
  const key = `${mode}${suffix}`;
  let k = cache.get(key);
  if (!k) {
    const label = { forward: 'forward', dx: 'backward_input', dw: 'backward_weight' }[mode];
    const code =
      mode === 'forward' ? forwardCode(special) : mode === 'dx' ? dxCode(special) : special ? dw33s1Code() : dwCode();
    k = defineKernel({
      name: `conv2d_${label}_direct${suffix}`,
      storage: mode === 'forward' ? ['read', 'read', 'read', 'write'] : ['read', 'read', 'write'],
      uniforms: true,
      code,
    });
    cache.set(key, k);
  }
  return k;
}

export const directKernels = (): KernelDef[] => [
  directKernel('forward'),
  directKernel('forward', true),
  directKernel('dx'),
  directKernel('dx', true),
  directKernel('dw'),
  directKernel('dw', true),
];
