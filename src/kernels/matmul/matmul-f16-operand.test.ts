// matmul with one fp16 operand and f32 activations: the weight may be either side of a
// product (linear's forward reads it as b, a transposed use reads it as a). Both stores —
// shader-f16 and packed pairs on a device without it — for every kernel, forward and the
// gradient of the f32 operand, against the reference on the fp16-rounded operand.
import { describe, expect, it } from 'vitest';
import { roundToF16 } from '../../engine/dtype.ts';
import type { Engine } from '../../engine/engine.ts';
import { testEngine, testEngineWithoutF16 } from '../../../test/engine.ts';
import { assertClose } from '../../../test/close.ts';
import { rng } from '../../../test/random.ts';
import { matmulBackwardRef, matmulForwardRef } from './matmul-reference.ts';
import { matmulBackward, matmulForward } from './matmul-kernels.ts';

const TOL = { rtol: 2e-5, atol: 1e-6 };

// fp16 a (scalar and vec4 layouts, transposed or not) times an f32 b, batched over b.
const CASES = [
  { a: [9, 7], b: [3, 7, 5], transA: false },
  { a: [12, 8], b: [2, 12, 16], transA: true },
];

const engines: [string, () => Promise<Engine>][] = [
  ['shader-f16', testEngine],
  ['packed pairs (no shader-f16)', testEngineWithoutF16],
];

describe('matmul with an fp16 operand', () => {
  for (const [name, make] of engines) {
    it(`fp16 a, f32 b: forward and dB match the reference, every kernel (${name})`, async (ctx) => {
      const e = await make();
      ctx.skip(name === 'shader-f16' && !e.f16, 'adapter lacks shader-f16');
      for (const [i, c] of CASES.entries()) {
        const r = rng(60 + i);
        const as = roundToF16(r.normals(c.a[0] * c.a[1]));
        const bs = r.normals(c.b.reduce((p, d) => p * d, 1));
        const o = { transA: c.transA };
        const yRef = matmulForwardRef(as, c.a, bs, c.b, o);
        const M = c.transA ? c.a[1] : c.a[0];
        const dYs = r.normals(c.b[0] * M * c.b[2]);
        const [, dBRef] = matmulBackwardRef(as, c.a, bs, c.b, dYs, o);
        for (const impl of ['naive', 'tiled', 'direct'] as const) {
          await e.scopeAsync(async () => {
            const a = e.tensor(as, c.a, { dtype: 'f16' });
            const b = e.tensor(bs, c.b);
            const y = matmulForward(e, a, b, { ...o, impl });
            expect(y.dtype).toBe('f32');
            const what = `${impl} a[${c.a}]${c.transA ? 'ᵀ' : ''}·b[${c.b}] (${name})`;
            assertClose(await y.read(), yRef, TOL, `y ${what}`);
            const [, dB] = matmulBackward(e, a, b, e.tensor(dYs, y.shape), { ...o, impl }, [false, true]);
            assertClose(await dB!.read(), dBRef, TOL, `dB ${what}`);
          });
        }
      }
    });
  }
});
