// WGSL forward and backward of nearest-neighbour 2× upsampling, and their dispatch (no
// autograd here: see upsample.ts). Both are pure data movement; each invocation handles one
// input pixel and its 2×2 output block, so the forward writes four values and the backward
// reads them as two vec2 rows: a quarter of the invocations and index arithmetic of a
// per-output kernel. The forward's y is a scalar f32 array so that fp16 activations (inference,
// half-storage.ts, which rewrites f32 and vec4f bindings) run the same kernel.
import { activationDtype } from '../../engine/activation-dtype.ts';
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import { forEachRowRange } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { elementwiseMain } from '../elementwise-main.ts';

const forwardKernel = defineKernel({
  name: 'upsample_nearest2x_forward',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, W: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i >= p.n) { return; }
  // i = row·W + col over all (B·C·H) input rows; output rows 2·row and 2·row + 1 are 2W long.
  let row = i / p.W;
  let col = i % p.W;
  let v = x[i];
  let top = 2u * ((2u * row) * p.W + col);
  let bottom = top + 2u * p.W;
  y[top] = v;
  y[top + 1u] = v;
  y[bottom] = v;
  y[bottom + 1u] = v;
}`,
});

const backwardKernel = defineKernel({
  name: 'upsample_nearest2x_backward',
  storage: ['read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, W: u32 }
@group(0) @binding(0) var<storage, read> dY: array<vec2f>;
@group(0) @binding(1) var<storage, read_write> dX: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i >= p.n) { return; }
  let row = i / p.W;
  let col = i % p.W;
  let s = dY[(2u * row) * p.W + col] + dY[(2u * row + 1u) * p.W + col];
  dX[i] = s.x + s.y;
}`,
});

function checkRank(what: string, t: Tensor): void {
  if (t.rank !== 4) throw new Error(`${what}: expected (B, C, H, W), got ${t}`);
}

// x: (B, C, H, W) → y: (B, C, 2H, 2W), in x's dtype (fp16 at inference: activationDtype)
export function upsampleNearest2xForward(engine: Engine, x: Tensor): Tensor {
  const dtype = activationDtype('upsampleNearest2x', x);
  checkRank('upsampleNearest2x', x);
  const [B, C, H, W] = x.shape;
  const y = engine.empty([B, C, 2 * H, 2 * W], dtype);
  // (B·C) planes are independent: ranges of them under the binding limit.
  forEachRowRange(engine, `upsample_nearest2x (${x})`, B * C, [x, y], ([xs, ys]) =>
    engine.dispatch(forwardKernel, [xs, ys], grid1d(xs.size, ELEMENTWISE_WG), [u32(xs.size), u32(W)]),
  );
  return y;
}

// dY: (B, C, 2H, 2W) → dX: (B, C, H, W)
export function upsampleNearest2xBackward(engine: Engine, dY: Tensor): Tensor {
  if (dY.dtype !== 'f32') throw new Error(`upsampleNearest2x backward: f32 only, got ${dY}`);
  checkRank('upsampleNearest2x backward', dY);
  const [B, C, H2, W2] = dY.shape;
  if (H2 % 2 || W2 % 2) throw new Error(`upsampleNearest2x backward: odd spatial size in ${dY}`);
  const dX = engine.empty([B, C, H2 / 2, W2 / 2]);
  forEachRowRange(engine, `upsample_nearest2x backward (${dY})`, B * C, [dY, dX], ([dYs, dXs]) =>
    engine.dispatch(backwardKernel, [dYs, dXs], grid1d(dXs.size, ELEMENTWISE_WG), [u32(dXs.size), u32(W2 / 2)]),
  );
  return dX;
}

export const upsampleKernels = [forwardKernel, backwardKernel];
