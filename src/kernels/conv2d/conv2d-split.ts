// conv2d on tensors above the storage binding limit (512 px VAE: 4 photos of 128 channels
// are 512 MiB; in the decoder one 256-channel 512 px image alone is 256 MiB). The unchanged
// kernels run on blocks: ranges of whole images while one image's input and output fit,
// else one image at a time in ranges of input channels (summed: y = Σ conv(x[ci], w[:, ci]))
// and of output channels (also when only the weight is above the limit). Weight blocks are
// copied out of the weight. The forward writes each block straight into its view of y and
// sums input-channel blocks there (the kernel's accumulate flag), so it needs no partial
// outputs (with fp16 activations each block's sum is then rounded to fp16 once); the
// backward's blocks are copied into place, and dW and dBias sum over images.
import { activationDtype } from '../../engine/activation-dtype.ts';
import { bytesPerElement } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { convOutputSize } from './conv2d-reference.ts';
import {
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dForwardInto,
  conv2dGeometry,
  type Conv2dKernelOptions,
} from './conv2d-kernels.ts';

interface Plan {
  B: number;
  Cin: number;
  Cout: number;
  H: number;
  W: number;
  HW: number;
  HoWo: number;
  /** kh·kw */
  K: number;
  /** Images per block (1 when channels are split). */
  nb: number;
  /** Input and output channels per range. */
  ci: number;
  co: number;
}

interface Block {
  b0: number;
  nb: number;
  ci0: number;
  ci: number;
  co0: number;
  co: number;
}

// `xBytes`: bytes per element of x and y (or dX and dY), 2 for fp16 activations; `wBytes`:
// of the weight (or dW), 2 for a frozen fp16 weight.
function plan(
  engine: Engine,
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dKernelOptions,
  what: string,
  xBytes: number,
  wBytes: number,
): Plan | null {
  const g = conv2dGeometry(xShape, wShape, opts);
  const { Ho, Wo } = convOutputSize(g);
  const [HW, HoWo, K] = [g.H * g.W, Ho * Wo, g.kh * g.kw];
  const inImg = g.Cin * HW * xBytes;
  const outImg = g.Cout * HoWo * xBytes;
  const limit = engine.maxBindingBytes;
  const weightFits = g.Cout * g.Cin * K * wBytes <= limit;
  if (g.B * Math.max(inImg, outImg) <= limit && weightFits) return null;
  const base = { B: g.B, Cin: g.Cin, Cout: g.Cout, H: g.H, W: g.W, HW, HoWo, K };
  const desc = `${what} (x [${xShape.join(',')}], weight [${wShape.join(',')}])`;
  if (Math.max(inImg, outImg) <= limit && weightFits) {
    return { ...base, nb: chunkRows(engine, desc, g.B, [inImg, outImg]), ci: g.Cin, co: g.Cout };
  }
  // Channel ranges (also when only the weight is too big): one image at a time, since a
  // channel range of several images is not contiguous.
  const align = engine.bindingAlignment;
  if (g.B > 1 && (inImg % align !== 0 || outImg % align !== 0)) {
    throw new Error(`${desc}: channel ranges are needed but images do not start at aligned offsets`);
  }
  // Input channels first, leaving room for the smallest aligned output range's weight block.
  const minCo = Math.min(g.Cout, align / gcd(HoWo * xBytes, align));
  const ci = even(wBytes, g.Cin, chunkRows(engine, desc, g.Cin, [HW * xBytes], [minCo * K * wBytes]), desc);
  const co = even(wBytes, g.Cout, chunkRows(engine, desc, g.Cout, [HoWo * xBytes], [ci * K * wBytes]), desc);
  return { ...base, nb: 1, ci, co };
}

// An fp16 weight's blocks are buffer copies of 4-byte-aligned runs: with an even channel
// count, even channel ranges keep every run even. (chunkRows' steps are powers of two, so
// rounding down to even keeps a chunk aligned.)
function even(wBytes: number, total: number, chunk: number, desc: string): number {
  if (wBytes === 4 || chunk >= total || chunk % 2 === 0) return chunk;
  if (chunk === 1 || total % 2 !== 0) {
    throw new Error(`${desc}: an fp16 weight's channel blocks need an even channel count and room for two channels`);
  }
  return chunk - 1;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function* blocks(p: Plan, order: 'forward' | 'dx' | 'dw'): Generator<Block> {
  const ranges = (n: number, step: number) => Array.from({ length: Math.ceil(n / step) }, (_, i) => i * step);
  const bs = ranges(p.B, p.nb);
  const cis = ranges(p.Cin, p.ci);
  const cos = ranges(p.Cout, p.co);
  const block = (b0: number, ci0: number, co0: number): Block => ({
    b0,
    nb: Math.min(p.nb, p.B - b0),
    ci0,
    ci: Math.min(p.ci, p.Cin - ci0),
    co0,
    co: Math.min(p.co, p.Cout - co0),
  });
  // The innermost loop is the one summed over.
  if (order === 'forward') for (const b of bs) for (const co of cos) for (const ci of cis) yield block(b, ci, co);
  if (order === 'dx') for (const b of bs) for (const ci of cis) for (const co of cos) yield block(b, ci, co);
  if (order === 'dw') for (const co of cos) for (const ci of cis) for (const b of bs) yield block(b, ci, co);
}

const xView = (e: Engine, x: Tensor, p: Plan, k: Block) =>
  e.view(x, (k.b0 * p.Cin + k.ci0) * p.HW, [k.nb, k.ci, p.H, p.W]);
const yView = (e: Engine, y: Tensor, p: Plan, k: Block) =>
  e.view(y, (k.b0 * p.Cout + k.co0) * p.HoWo, [k.nb, k.co, ...y.shape.slice(2)]);

/** weight[co0 : co0 + co, ci0 : ci0 + ci] as a new (co, ci, kh, kw) tensor (the weight itself when whole). */
function weightBlock(e: Engine, w: Tensor, p: Plan, k: Block): Tensor {
  if (k.ci === p.Cin && k.co === p.Cout) {
    return e.alias(w); // a same-memory handle the caller's scope disposes
  }
  // In the weight's own dtype: a frozen fp16 weight's block stays fp16 (copyInto moves bytes).
  const out = e.empty([k.co, k.ci, ...w.shape.slice(2)], w.dtype);
  if (k.ci === p.Cin) e.copyInto(out, 0, w, k.co0 * p.Cin * p.K, out.size);
  else
    for (let j = 0; j < k.co; j++) e.copyInto(out, j * k.ci * p.K, w, ((k.co0 + j) * p.Cin + k.ci0) * p.K, k.ci * p.K);
  return out;
}

/** Copy a block result (nb, channels, …) into channels [c0, c0 + channels) of dst (nb images from b0). */
function place(e: Engine, dst: Tensor, C: number, per: number, b0: number, c0: number, src: Tensor): void {
  const [nb, channels] = src.shape;
  for (let i = 0; i < nb; i++) e.copyInto(dst, ((b0 + i) * C + c0) * per, src, i * channels * per, channels * per);
}

/** Sum `make()` over consecutive blocks sharing key(); hand each finished sum to done(). */
class Summer {
  private sum: Tensor | null = null;
  private key = '';
  constructor(
    private readonly engine: Engine,
    private readonly done: (sum: Tensor, key: string) => void,
  ) {}
  add(key: string, part: Tensor): void {
    if (this.sum && key !== this.key) this.finish();
    this.key = key;
    if (this.sum) this.engine.accumulate(this.sum, part);
    else this.sum = this.engine.keep(part);
  }
  finish(): void {
    if (!this.sum) return;
    this.done(this.sum, this.key);
    this.sum.dispose();
    this.sum = null;
  }
}

// x: (B, Cin, H, W), weight: (Cout, Cin, kh, kw), bias: (Cout) | null → y: (B, Cout, Ho, Wo)
export function conv2dForwardSplit(
  engine: Engine,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  opts: Conv2dKernelOptions = {},
): Tensor {
  const dtype = activationDtype('conv2d', x);
  const p = plan(engine, x.shape, weight.shape, opts, 'conv2d', bytesPerElement(dtype), bytesPerElement(weight.dtype));
  if (!p) return conv2dForward(engine, x, weight, bias, opts);
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  const { Ho, Wo } = convOutputSize(g);
  const y = engine.empty([p.B, p.Cout, Ho, Wo], dtype);
  for (const k of blocks(p, 'forward')) {
    engine.scope(() =>
      conv2dForwardInto(
        engine,
        xView(engine, x, p, k),
        weightBlock(engine, weight, p, k),
        k.ci0 === 0 ? bias : null,
        yView(engine, y, p, k),
        {
          ...opts,
          accumulate: k.ci0 > 0,
          biasOffset: k.co0,
        },
      ),
    );
  }
  return y;
}

// dY: (B, Cout, Ho, Wo), weight: (Cout, Cin, kh, kw) → dX: xShape
export function conv2dBackwardInputSplit(
  engine: Engine,
  xShape: readonly number[],
  weight: Tensor,
  dY: Tensor,
  opts: Conv2dKernelOptions = {},
): Tensor {
  const p = plan(engine, xShape, weight.shape, opts, 'conv2d backward (dX)', 4, bytesPerElement(weight.dtype));
  if (!p) return conv2dBackwardInput(engine, xShape, weight, dY, opts);
  const dX = engine.empty(xShape);
  const sums = new Summer(engine, (sum, key) => {
    const [b0, ci0] = key.split(',').map(Number);
    place(engine, dX, p.Cin, p.HW, b0, ci0, sum);
  });
  for (const k of blocks(p, 'dx')) {
    engine.scope(() => {
      const part = conv2dBackwardInput(
        engine,
        [k.nb, k.ci, p.H, p.W],
        weightBlock(engine, weight, p, k),
        yView(engine, dY, p, k),
        opts,
      );
      sums.add(`${k.b0},${k.ci0}`, part);
    });
  }
  sums.finish();
  return dX;
}

// x: (B, Cin, H, W), dY: (B, Cout, Ho, Wo) → dW: wShape
export function conv2dBackwardWeightSplit(
  engine: Engine,
  x: Tensor,
  wShape: readonly number[],
  dY: Tensor,
  opts: Conv2dKernelOptions = {},
): Tensor {
  const p = plan(engine, x.shape, wShape, opts, 'conv2d backward (dW)', 4, 4);
  if (!p) return conv2dBackwardWeight(engine, x, wShape, dY, opts);
  const dW = engine.empty(wShape);
  const sums = new Summer(engine, (sum, key) => {
    const [co0, ci0] = key.split(',').map(Number);
    const [co, ci] = sum.shape;
    for (let j = 0; j < co; j++) engine.copyInto(dW, ((co0 + j) * p.Cin + ci0) * p.K, sum, j * ci * p.K, ci * p.K);
  });
  for (const k of blocks(p, 'dw')) {
    engine.scope(() => {
      const part = conv2dBackwardWeight(
        engine,
        xView(engine, x, p, k),
        [k.co, k.ci, ...wShape.slice(2)],
        yView(engine, dY, p, k),
        opts,
      );
      sums.add(`${k.co0},${k.ci0}`, part);
    });
  }
  sums.finish();
  return dW;
}

// dY: (B, Cout, Ho, Wo) → dBias: (Cout); xShape and wShape give the split plan.
export function conv2dBackwardBiasSplit(
  engine: Engine,
  xShape: readonly number[],
  wShape: readonly number[],
  dY: Tensor,
  opts: Conv2dKernelOptions = {},
): Tensor {
  const p = plan(engine, xShape, wShape, opts, 'conv2d backward (dBias)', 4, 4);
  if (!p) return conv2dBackwardBias(engine, dY);
  const dBias = engine.empty([p.Cout]);
  const sums = new Summer(engine, (sum, key) => engine.copyInto(dBias, Number(key), sum));
  for (const k of blocks(p, 'dw')) {
    if (k.ci0 !== 0) continue;
    engine.scope(() => sums.add(`${k.co0}`, conv2dBackwardBias(engine, yView(engine, dY, p, k))));
  }
  sums.finish();
  return dBias;
}
