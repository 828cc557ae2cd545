// WGSL forward and backward of softmax over the last dimension, and their dispatch (no
// autograd here: see softmax.ts). One workgroup per row; each invocation strides over the
// row, so rows longer than the workgroup loop, and partial results meet in a tree
// reduction in workgroup memory.
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import { forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';

/** Workgroup sizes compiled: a narrow one keeps short rows (77 tokens) from idling 200 lanes. */
export const SOFTMAX_WORKGROUP_SIZES = [64, 256] as const;
type WorkgroupSize = (typeof SOFTMAX_WORKGROUP_SIZES)[number];

const workgroupFor = (n: number): WorkgroupSize => (n <= 1024 ? 64 : 256);

// Each invocation keeps a running (max, sum of exp(x − max)) over its strided elements, so
// the row is read once for the statistics and once for the output. Pairs are combined by
// rescaling both sums to the larger max. The most negative f32 (not −inf, which WGSL does
// not guarantee) marks "no element yet": exp(LOWEST − m) underflows to 0.
const forwardKernels = new Map<WorkgroupSize, KernelDef>();
const forwardKernel = (wg: WorkgroupSize): KernelDef => {
  let k = forwardKernels.get(wg);
  if (!k) {
    k = defineKernel({
      name: `softmax_forward_wg${wg}`,
      storage: ['read', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
const WG = ${wg}u;
const LOWEST = -3.4028234e38;
var<workgroup> redMax: array<f32, WG>;
var<workgroup> redSum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = flatWorkgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < p.n; j += WG) {
    let xv = x[base + j];
    if (xv > m) {
      s = s * exp(m - xv) + 1.0;
      m = xv;
    } else {
      s += exp(xv - m);
    }
  }
  redMax[lid] = m;
  redSum[lid] = s;
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) {
      let m2 = redMax[lid + half];
      let mm = max(m, m2);
      s = s * exp(m - mm) + redSum[lid + half] * exp(m2 - mm);
      m = mm;
      redMax[lid] = m;
      redSum[lid] = s;
    }
  }
  workgroupBarrier();
  let rowMax = redMax[0];
  let inv = 1.0 / redSum[0];
  for (var j = lid; j < p.n; j += WG) {
    y[base + j] = exp(x[base + j] - rowMax) * inv;
  }
}`,
    });
    forwardKernels.set(wg, k);
  }
  return k;
};

const backwardKernels = new Map<WorkgroupSize, KernelDef>();
const backwardKernel = (wg: WorkgroupSize): KernelDef => {
  let k = backwardKernels.get(wg);
  if (!k) {
    k = defineKernel({
      name: `softmax_backward_wg${wg}`,
      storage: ['read', 'read', 'write'],
      uniforms: true,
      code: /* wgsl */ `
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read_write> dX: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
const WG = ${wg}u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = flatWorkgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var acc = 0.0;
  for (var j = lid; j < p.n; j += WG) {
    acc += y[base + j] * dY[base + j];
  }
  red[lid] = acc;
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) {
      acc += red[lid + half];
      red[lid] = acc;
    }
  }
  workgroupBarrier();
  let dot = red[0];
  for (var j = lid; j < p.n; j += WG) {
    dX[base + j] = y[base + j] * (dY[base + j] - dot);
  }
}`,
    });
    backwardKernels.set(wg, k);
  }
  return k;
};

function rowsOf(engine: Engine, t: Tensor, what: string): { rows: number; n: number } {
  if (t.dtype === 'f16' && !engine.f16) throw new Error(`${what}: fp16 ${t} needs an adapter with shader-f16`);
  if (t.rank === 0 || t.size === 0)
    throw new Error(`${what}: needs a non-empty tensor with a last dimension, got ${t}`);
  const n = t.shape[t.rank - 1];
  return { rows: t.size / n, n };
}

// x: (…, N) → y: (…, N), softmax along N, in x's dtype (fp16 stored by the engine's
// half-storage rewrite; the statistics stay f32 in registers and workgroup memory)
export function softmaxForward(engine: Engine, x: Tensor): Tensor {
  const { rows, n } = rowsOf(engine, x, 'softmax');
  const y = engine.empty(x.shape, x.dtype);
  // Rows under the binding limit.
  forEachRowRange(engine, `softmax (${x})`, rows, [x, y], (views, r) =>
    engine.dispatch(forwardKernel(workgroupFor(n)), views, grid(r), [u32(r), u32(n)]),
  );
  return y;
}

// y (the forward's output), dY: (…, N) → dX: (…, N)
export function softmaxBackward(engine: Engine, y: Tensor, dY: Tensor): Tensor {
  // Training keeps fp32 activations: the backward has no fp16 variant.
  if (y.dtype !== 'f32') throw new Error(`softmax backward: f32 only, got ${y}`);
  const { rows, n } = rowsOf(engine, y, 'softmax backward');
  if (dY.shape.join() !== y.shape.join() || dY.dtype !== 'f32') {
    throw new Error(`softmax backward: dY ${dY} does not match y ${y}`);
  }
  const dX = engine.empty(y.shape);
  forEachRowRange(engine, `softmax backward (${y})`, rows, [y, dY, dX], (views, r) =>
    engine.dispatch(backwardKernel(workgroupFor(n)), views, grid(r), [u32(r), u32(n)]),
  );
  return dX;
}

export const softmaxKernels: KernelDef[] = SOFTMAX_WORKGROUP_SIZES.flatMap((wg) => [
  forwardKernel(wg),
  backwardKernel(wg),
]);
