// linear with fp16 activations (inference): x and y f16, the weight and bias f16 (frozen
// weights) or f32 (LoRA's A and B at generate time), against the float64 reference on the
// same fp16-rounded x, at a normal binding limit and under a low one (the row-range split).
//
// Tolerance: the reference sees exactly the stored inputs, the GPU accumulates in f32, and
// y is rounded once on store, by ≤ 2⁻¹¹ ≈ 4.9e-4 of |y| ≤ max|y|; f32 summation adds ~1e-6
// of scale. So rtol 1e-3 of scale (twice that; observed ≤ 4.1e-4 on lavapipe) + atol 1e-6 (fp16 subnormals step by 6e-8).
import { describe, expect, it } from 'vitest';
import { roundToF16, type DType } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngineWithF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import type { MatmulImpl } from '../matmul/matmul-kernels.ts';
import { linearForwardRef } from './linear-reference.ts';
import { linearForward } from './linear-kernels.ts';
import { linear } from './linear.ts';

const TOL = { rtol: 1e-3, atol: 1e-6 };

interface Case {
  rows: number;
  inF: number;
  outF: number;
  bias: boolean;
  /** The weight's dtype, and the bias's unless `b` says otherwise. */
  w: DType;
  b?: DType;
}

// Scalar loads (odd features), vec4 loads and stores (multiples of 4), a LoRA down and up
// projection (rank 4, no bias, f32 weights), a frozen fp16 weight with an f32 bias.
const CASES: Case[] = [
  { rows: 13, inF: 7, outF: 9, bias: true, w: 'f32' },
  { rows: 37, inF: 24, outF: 72, bias: true, w: 'f32' },
  { rows: 70, inF: 40, outF: 4, bias: false, w: 'f32' },
  { rows: 70, inF: 4, outF: 40, bias: false, w: 'f32' },
  { rows: 37, inF: 24, outF: 72, bias: true, w: 'f16' },
  { rows: 21, inF: 12, outF: 20, bias: false, w: 'f16' },
  { rows: 21, inF: 12, outF: 20, bias: true, w: 'f16', b: 'f32' },
];

const label = (c: Case) => `${c.rows}×${c.inF}→${c.outF}${c.bias ? `+b ${c.b ?? c.w}` : ''} (${c.w} weight)`;

function data(c: Case, seed: number) {
  const r = rng(seed);
  const round = (v: Float32Array, dtype: DType) => (dtype === 'f16' ? roundToF16(v) : v);
  const x = roundToF16(r.normals(c.rows * c.inF));
  const w = round(r.normals(c.outF * c.inF), c.w);
  const b = round(r.normals(c.outF), c.b ?? c.w);
  return { x, w, b, ref: linearForwardRef(x, w, c.bias ? b : null, c.inF, c.outF) };
}

// fp16 y against the reference and the f32 y of the same op on the same inputs.
async function check(e: Engine, c: Case, seed: number, impl?: MatmulImpl): Promise<void> {
  const d = data(c, seed);
  return e.scopeAsync(async () => {
    const w = e.tensor(d.w, [c.outF, c.inF], { dtype: c.w });
    const b = c.bias ? e.tensor(d.b, [c.outF], { dtype: c.b ?? c.w }) : null;
    const xh = e.tensor(d.x, [c.rows, c.inF], { dtype: 'f16' });
    // The op itself, or its kernel-level forward with each matmul kernel forced.
    const y = e.noGrad(() => (impl ? linearForward(e, xh, w, b, { impl }) : linear(xh, w, b)));
    expect(y.dtype).toBe('f16');
    expect(y.shape).toEqual([c.rows, c.outF]);
    const got = await y.read();
    assertClose(got, d.ref, TOL, `f16 y ${label(c)} ${impl ?? ''}`);
    const y32 = e.noGrad(() => linear(e.tensor(d.x, [c.rows, c.inF]), w, b));
    assertClose(got, await y32.read(), TOL, `f16 y vs f32 y ${label(c)}`);
  });
}

describe('linear with fp16 activations', () => {
  it('fp16 x with f32 (LoRA) and fp16 (frozen) weights matches the reference on fp16-rounded x', async () => {
    const e = await testEngineWithF16();
    for (const [i, c] of CASES.entries()) {
      for (const impl of [undefined, 'naive', 'tiled', 'direct'] as const) {
        await check(e, c, 40 + i, impl);
      }
    }
  });

  it('the same through the split paths under a low binding limit', async () => {
    const e = await testEngineWithF16();
    const limit = 4096;
    e.setBindingLimit(limit);
    try {
      // x (e.g. 300 × 32 halves = 19200 bytes) and y go in row ranges.
      for (const [i, c] of [
        { rows: 300, inF: 32, outF: 24, bias: true, w: 'f32' },
        { rows: 301, inF: 36, outF: 20, bias: true, w: 'f16' },
        { rows: 257, inF: 8, outF: 4, bias: false, w: 'f32' },
        // The last range is one row of 5 outputs: an odd number of halves, written in place.
        { rows: 257, inF: 8, outF: 5, bias: true, w: 'f32' },
        // Weights above the limit (f32 81920 bytes: 20 ranges of 16 outputs; fp16 40960: 10
        // of 32), with x and y in row ranges too, or whole.
        { rows: 40, inF: 64, outF: 320, bias: true, w: 'f32' },
        { rows: 40, inF: 64, outF: 320, bias: true, w: 'f16' },
        { rows: 3, inF: 64, outF: 320, bias: false, w: 'f32' },
      ].entries() as IterableIterator<[number, Case]>) {
        expect(Math.max(c.rows * c.inF * 2, c.outF * c.inF * (c.w === 'f32' ? 4 : 2))).toBeGreaterThan(limit);
        await check(e, c, 60 + i);
      }
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  // What the weight-range split relies on: every kernel writes an M×N block of columns of
  // a wider output in place (vec4 stores where the block and row start on multiples of 4).
  it('writes a block of columns of a wider output, every kernel, fp16 and f32', async () => {
    const e = await testEngineWithF16();
    const [rows, inF, stride] = [7, 12, 24];
    const blocks = [
      { offset: 4, n: 8 },
      { offset: 13, n: 5 },
    ];
    const r = rng(7);
    const x = roundToF16(r.normals(rows * inF));
    const ws = blocks.map((bl) => r.normals(bl.n * inF));
    const bs = blocks.map((bl) => r.normals(bl.n));
    const want = new Float64Array(rows * stride);
    blocks.forEach((bl, k) => {
      const ref = linearForwardRef(x, ws[k], bs[k], inF, bl.n);
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < bl.n; j++) want[i * stride + bl.offset + j] = ref[i * bl.n + j];
    });
    for (const dtype of ['f16', 'f32'] as const) {
      for (const impl of ['naive', 'tiled', 'direct'] as const) {
        await e.scopeAsync(async () => {
          const xt = e.tensor(x, [rows, inF], { dtype });
          const y = e.zeros([rows, stride], dtype);
          blocks.forEach((bl, k) => {
            const w = e.tensor(ws[k], [bl.n, inF]);
            const b = e.tensor(bs[k], [bl.n]);
            e.noGrad(() => linearForward(e, xt, w, b, { impl, into: y, intoColumns: { offset: bl.offset, stride } }));
          });
          assertClose(await y.read(), want, TOL, `${dtype} ${impl}`);
        });
      }
    }
  });

  it('refuses fp16 activations while gradients are recorded', async () => {
    const e = await testEngineWithF16();
    e.scope(() => {
      const x = e.tensor([1, 2, 3], [1, 3], { dtype: 'f16' });
      const w = e.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(() => linear(x, w)).toThrow(/linear: fp16 activations .* are for inference, inside engine.noGrad/);
    });
  });
});
