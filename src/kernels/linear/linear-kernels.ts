// Linear layer kernels and their dispatch (no autograd here: see linear.ts). The three
// products run on the matmul kernels (the forward with a fused bias epilogue); the bias
// gradient is a column sum of dY, the one kernel of its own here.
import type { DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid, u32, WGSL_FLAT_INDEX, type KernelDef } from '../../engine/kernel.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { weightVariant, type WeightStore } from '../../engine/weight-variant.ts';
import { gemm, matmulKernelVariants, type MatmulImpl, type MatmulTileConfig } from '../matmul/matmul-kernels.ts';

export interface LinearKernelOptions {
  /** Matmul kernel for the products (default 'tiled'; tests use 'naive' as a second reference). */
  impl?: MatmulImpl;
  tile?: MatmulTileConfig;
  /** Forward only: write y into this view of a larger output instead of a new tensor. */
  into?: Tensor;
  /** Forward only: y is columns [offset, offset + out) of into's rows of `stride` (GemmArgs.intoColumns). */
  intoColumns?: { offset: number; stride: number };
}

// Each workgroup owns 64 adjacent columns (coalesced reads of a row) and splits the rows
// over 4 lanes, whose partial sums meet in workgroup memory.
const BIAS_COLS = 64;
const BIAS_LANES = 4;

const biasGradKernels = new Map<DType, KernelDef>();
const biasGradKernel = (dtype: DType): KernelDef => {
  let k = biasGradKernels.get(dtype);
  if (!k) {
    k = defineKernel({
      name: `linear_bias_grad_${dtype}`,
      storage: ['read', 'write'],
      uniforms: true,
      code: /* wgsl */ `${dtype === 'f16' ? 'enable f16;' : ''}
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<storage, read> dY: array<${dtype}>;
@group(0) @binding(1) var<storage, read_write> dB: array<${dtype}>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
var<workgroup> part: array<f32, ${BIAS_COLS * BIAS_LANES}>;
@compute @workgroup_size(${BIAS_COLS * BIAS_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let col = flatWorkgroup(wid, nwg) * ${BIAS_COLS}u + lid % ${BIAS_COLS}u;
  let lane = lid / ${BIAS_COLS}u;
  var s = 0.0;
  if (col < p.cols) {
    for (var r = lane; r < p.rows; r += ${BIAS_LANES}u) { s += f32(dY[r * p.cols + col]); }
  }
  part[lid] = s;
  workgroupBarrier();
  if (lane == 0u && col < p.cols) {
    var total = 0.0;
    for (var l = 0u; l < ${BIAS_LANES}u; l++) { total += part[lid + l * ${BIAS_COLS}u]; }
    dB[col] = ${dtype}(total);
  }
}`,
    });
    biasGradKernels.set(dtype, k);
  }
  return k;
};

interface LinearDims {
  rows: number;
  inF: number;
  outF: number;
}

function linearDims(xShape: readonly number[], w: Tensor, bias: Tensor | null): LinearDims {
  if (w.rank !== 2) throw new Error(`linear: weight must be (out, in), got ${w}`);
  const [outF, inF] = w.shape;
  if (xShape.length < 1 || xShape[xShape.length - 1] !== inF) {
    throw new Error(`linear: input [${xShape}] does not end in ${inF} features of weight ${w}`);
  }
  if (bias && (bias.rank !== 1 || bias.size !== outF)) throw new Error(`linear: bias ${bias} for ${outF} outputs`);
  return { rows: xShape.slice(0, -1).reduce((p, d) => p * d, 1), inF, outF };
}

// x: (…, in), weight: (out, in), bias: (out) | null → y: (…, out)
export function linearForward(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: LinearKernelOptions = {},
): Tensor {
  const { rows, inF, outF } = linearDims(x.shape, weight, bias);
  return gemm(engine, {
    a: { t: x, trans: false, stride: 0 },
    b: { t: weight, trans: true, stride: 0 },
    bias,
    M: rows,
    N: outF,
    K: inF,
    batch: 1,
    outShape: [...x.shape.slice(0, -1), outF],
    // The activation's dtype, whatever the weight's (an fp16 x with an f32 LoRA weight gives fp16).
    out: x.dtype,
    into: opts.into,
    intoColumns: opts.intoColumns,
    impl: opts.impl,
    tile: opts.tile,
  });
}

// dY: (…, out) → [dX: (…, in), dW: (out, in) summed over all leading dims, dB: (out)]
// (null where `need` is false; x is read only for dW, weight only for dX)
export function linearBackward(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  dY: Tensor,
  need: readonly [boolean, boolean, boolean] = [true, true, true],
  opts: LinearKernelOptions = {},
): [Tensor | null, Tensor | null, Tensor | null] {
  const { rows, inF, outF } = linearDims(x.shape, weight, null);
  if (dY.size !== rows * outF) throw new Error(`linear: dY ${dY} for ${rows}×${outF} outputs`);
  const common = { batch: 1, impl: opts.impl, tile: opts.tile };
  const dX = need[0]
    ? // dX (rows, in) = dY · W
      gemm(engine, {
        ...common,
        a: { t: dY, trans: false, stride: 0 },
        b: { t: weight, trans: false, stride: 0 },
        M: rows,
        N: inF,
        K: outF,
        outShape: x.shape,
      })
    : null;
  const dW = need[1]
    ? // dW (out, in) = dYᵀ · x: the sum over rows is the product's inner dimension
      gemm(engine, {
        ...common,
        a: { t: dY, trans: true, stride: 0 },
        b: { t: x, trans: false, stride: 0 },
        M: outF,
        N: inF,
        K: rows,
        outShape: weight.shape,
      })
    : null;
  let dB: Tensor | null = null;
  if (need[2]) {
    dB = engine.empty([outF], dY.dtype);
    engine.dispatch(biasGradKernel(dY.dtype), [dY, dB], grid(Math.ceil(outF / BIAS_COLS)), [u32(rows), u32(outF)]);
  }
  return [dX, dW, dB];
}

/** The kernels linear dispatches for `dtype`: the bias gradient and the matmul variants. */
export function linearKernelVariants(dtype: DType = 'f32'): KernelDef[] {
  return [
    biasGradKernel(dtype),
    ...matmulKernelVariants(dtype, undefined, [
      { transA: false, transB: true, bias: true }, // forward
      { transA: false, transB: true, bias: false }, // forward without bias
      { transA: false, transB: false, bias: false }, // dX
      { transA: true, transB: false, bias: false }, // dW
    ]),
  ];
}

export const linearKernels: KernelDef[] = linearKernelVariants('f32');

/** The f32 kernels that read the weight (forward with and without bias, dX) with an fp16 weight in `store`. */
export function linearWeightKernels(store: WeightStore): KernelDef[] {
  return matmulKernelVariants('f32', undefined, [
    { transA: false, transB: true, bias: true },
    { transA: false, transB: true, bias: false },
    { transA: false, transB: false, bias: false },
  ]).map((k) => weightVariant(k, 'b', store));
}
