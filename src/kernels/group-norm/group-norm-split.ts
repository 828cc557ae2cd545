// Group norm on tensors above the storage binding limit (4 photos at 512 px through the VAE:
// 4×128×512×512 fp32 = 512 MiB; one 256-channel 512 px image alone is 256 MiB). Groups are
// independent, so the unchanged kernels run on views of (batch range, group range) blocks:
// whole images while one fits, else ranges of groups of one image. Outputs are copied into
// place; dW and dB sum over the images of each group range. fp16 activations (inference)
// split the same way: every size is in bytes of x's dtype, statistics stay f32.
import { bytesPerElement } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import {
  groupNormBackward,
  groupNormForward,
  type GroupNormBackwardOptions,
  type GroupNormForwardResult,
  type GroupNormGrads,
  type GroupNormKernelOptions,
} from './group-norm-kernels.ts';

interface Block {
  b0: number;
  nb: number;
  g0: number;
  ng: number;
}

interface Plan {
  B: number;
  C: number;
  G: number;
  /** Elements per channel (the product of the spatial dimensions). */
  S: number;
  /** Groups per range; G when whole images fit. */
  groupsPerRange: number;
  /** Images per block; 1 when groups are split. */
  imagesPerBlock: number;
}

function plan(engine: Engine, x: Tensor, G: number, what: string): Plan | null {
  const [B, C] = x.shape;
  const S = x.size / Math.max(1, B * C);
  const bpe = bytesPerElement(x.dtype);
  const imageBytes = C * S * bpe;
  if (x.rank < 2 || !Number.isInteger(C / G) || B * imageBytes <= engine.maxBindingBytes) return null;
  const desc = `${what} (x [${x.shape.join(',')}], ${G} groups)`;
  // Blocks are copied into place as whole 4-byte words; chunk starts are aligned already.
  if ((x.size * bpe) % 4 !== 0) throw new Error(`${desc}: an odd number of fp16 values cannot be split`);
  if (imageBytes <= engine.maxBindingBytes) {
    return { B, C, G, S, groupsPerRange: G, imagesPerBlock: chunkRows(engine, desc, B, [imageBytes]) };
  }
  if (imageBytes % engine.bindingAlignment !== 0) {
    throw new Error(`${desc}: images of ${imageBytes} bytes do not start at aligned offsets; cannot split groups`);
  }
  return { B, C, G, S, groupsPerRange: chunkRows(engine, desc, G, [(C / G) * S * bpe]), imagesPerBlock: 1 };
}

function* blocks(p: Plan): Generator<Block> {
  for (let g0 = 0; g0 < p.G; g0 += p.groupsPerRange) {
    for (let b0 = 0; b0 < p.B; b0 += p.imagesPerBlock) {
      yield { b0, nb: Math.min(p.imagesPerBlock, p.B - b0), g0, ng: Math.min(p.groupsPerRange, p.G - g0) };
    }
  }
}

/** Elements [start, start + n) of a small tensor (weights, statistics) as a new tensor. */
function part(engine: Engine, t: Tensor, start: number, shape: number[]): Tensor {
  const out = engine.empty(shape, t.dtype);
  engine.copyInto(out, 0, t, start, out.size);
  return out;
}

/** A view of block k of x-shaped t: images [b0, b0 + nb), channels of groups [g0, g0 + ng). */
function blockView(engine: Engine, t: Tensor, p: Plan, k: Block): Tensor {
  const cpg = p.C / p.G;
  const channels = k.ng * cpg;
  const shape = [k.nb, channels, ...t.shape.slice(2)];
  return engine.view(t, (k.b0 * p.C + k.g0 * cpg) * p.S, shape);
}

/** Copy an x-shaped block result back into place (one copy per image, one for whole images). */
function place(engine: Engine, dst: Tensor, p: Plan, k: Block, src: Tensor): void {
  // Whole images are contiguous: one copy, which also keeps fp16 images of an odd number of
  // values on 4-byte boundaries (the block starts aligned and x holds an even number).
  if (k.ng === p.G) return engine.copyInto(dst, k.b0 * p.C * p.S, src);
  const per = (k.ng * p.C * p.S) / p.G;
  for (let i = 0; i < k.nb; i++) engine.copyInto(dst, ((k.b0 + i) * p.C + (k.g0 * p.C) / p.G) * p.S, src, i * per, per);
}

/** Statistics (B, G) of the block's images and groups, or copied back. */
function statsPart(engine: Engine, t: Tensor, p: Plan, k: Block): Tensor {
  const out = engine.empty([k.nb, k.ng]);
  for (let i = 0; i < k.nb; i++) engine.copyInto(out, i * k.ng, t, (k.b0 + i) * p.G + k.g0, k.ng);
  return out;
}
function placeStats(engine: Engine, dst: Tensor, p: Plan, k: Block, src: Tensor): void {
  for (let i = 0; i < k.nb; i++) engine.copyInto(dst, (k.b0 + i) * p.G + k.g0, src, i * k.ng, k.ng);
}

// x: (B, C, ...spatial); weight, bias: (C) → y: like x; mean, rstd: (B, G)
export function groupNormForwardSplit(
  engine: Engine,
  x: Tensor,
  groups: number,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
  options: GroupNormKernelOptions = {},
): GroupNormForwardResult {
  const p = plan(engine, x, groups, 'group norm');
  if (!p) return groupNormForward(engine, x, groups, weight, bias, eps, options);
  const y = engine.empty(x.shape, x.dtype);
  const mean = engine.empty([p.B, groups]);
  const rstd = engine.empty([p.B, groups]);
  const cpg = p.C / groups;
  for (const k of blocks(p)) {
    engine.scope(() => {
      const c0 = k.g0 * cpg;
      const r = groupNormForward(
        engine,
        blockView(engine, x, p, k),
        k.ng,
        part(engine, weight, c0, [k.ng * cpg]),
        part(engine, bias, c0, [k.ng * cpg]),
        eps,
        options,
      );
      place(engine, y, p, k, r.y);
      placeStats(engine, mean, p, k, r.mean);
      placeStats(engine, rstd, p, k, r.rstd);
    });
  }
  return { y, mean, rstd };
}

// x, dY: (B, C, ...spatial); weight, bias: (C); mean, rstd: (B, G) → dX: like x, dW, dB: (C)
export function groupNormBackwardSplit(
  engine: Engine,
  x: Tensor,
  groups: number,
  weight: Tensor,
  bias: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dY: Tensor,
  options: GroupNormBackwardOptions = {},
): GroupNormGrads {
  const p = plan(engine, x, groups, 'group norm backward');
  if (!p) return groupNormBackward(engine, x, groups, weight, bias, mean, rstd, dY, options);
  const cpg = p.C / groups;
  const out: GroupNormGrads = {
    dX: (options.need?.x ?? true) ? engine.empty(x.shape) : null,
    dW: (options.need?.weight ?? true) ? engine.empty([p.C]) : null,
    dB: (options.need?.bias ?? true) ? engine.empty([p.C]) : null,
  };
  // Blocks come group range by group range; dW and dB of a range sum over its images.
  let sums = null as { g0: number; dW: Tensor | null; dB: Tensor | null } | null;
  const flush = () => {
    if (!sums) return;
    if (sums.dW) engine.copyInto(out.dW!, sums.g0 * cpg, sums.dW);
    if (sums.dB) engine.copyInto(out.dB!, sums.g0 * cpg, sums.dB);
    sums.dW?.dispose();
    sums.dB?.dispose();
    sums = null;
  };
  for (const k of blocks(p)) {
    if (sums?.g0 !== k.g0) flush();
    engine.scope(() => {
      const c0 = k.g0 * cpg;
      const g = groupNormBackward(
        engine,
        blockView(engine, x, p, k),
        k.ng,
        part(engine, weight, c0, [k.ng * cpg]),
        part(engine, bias, c0, [k.ng * cpg]),
        statsPart(engine, mean, p, k),
        statsPart(engine, rstd, p, k),
        blockView(engine, dY, p, k),
        options,
      );
      if (g.dX) place(engine, out.dX!, p, k, g.dX);
      if (!sums) {
        sums = { g0: k.g0, dW: g.dW && engine.keep(g.dW), dB: g.dB && engine.keep(g.dB) };
      } else {
        if (g.dW && sums.dW) engine.accumulate(sums.dW, g.dW);
        if (g.dB && sums.dB) engine.accumulate(sums.dB, g.dB);
      }
    });
  }
  flush();
  return out;
}
