import { describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { assertClose } from '../../test/close.ts';
import { rng } from '../../test/random.ts';
import { silu } from '../kernels/silu/silu.ts';
import { siluBackwardRef, siluForwardRef } from '../kernels/silu/silu-reference.ts';
import { Adam, adamStepRef } from './adam.ts';
import { sizeClass } from './buffer-pool.ts';
import { checkpoint } from './checkpoint.ts';
import { f16BitsToF32, f32ToF16Bits, roundToF16 } from './dtype.ts';
import { BindingLimitError, GpuOutOfMemoryError, GpuValidationError } from './engine.ts';
import { defineKernel, u32 } from './kernel.ts';
import type { Tensor } from './tensor.ts';

describe('buffer pool size classes', () => {
  it('are at least the request, 256-aligned, and waste at most 25 % above 1 KiB', () => {
    for (const n of [1, 255, 256, 257, 1000, 1025, 4097, 65537, 1e6, 123456789]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c % 256).toBe(0);
      if (n > 1024) expect(c / n).toBeLessThanOrEqual(1.25 + 1e-9);
    }
  });
});

describe('fp16 conversion', () => {
  it('matches IEEE binary16 on known values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds to +Inf
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -26, 0x0000], // below half the smallest subnormal
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [0.1, 0x2e66],
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `f16(${x})`).toBe(bits);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 37) expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
  });
});

describe('tensors and scopes', () => {
  it('round-trips f32 and f16 data', async () => {
    const e = await testEngine();
    const data = rng(1).normals(13, 10);
    await e.scopeAsync(async () => {
      assertClose(await e.tensor(data, [13]).read(), data, { rtol: 0, atol: 0 }, 'f32');
      if (e.f16) {
        const t = e.tensor(data, [13], { dtype: 'f16' });
        assertClose(await t.read(), roundToF16(data), { rtol: 0, atol: 0 }, 'f16');
        assertClose(await e.cast(t, 'f32').read(), roundToF16(data), { rtol: 0, atol: 0 }, 'cast f16→f32');
      }
    });
  });

  it('exact tensors take their own size (4-aligned), not a size class, and read back', async () => {
    const e = await testEngine();
    const base = e.pool.getStats().liveBytes;
    const data = rng(2).normals(1301);
    const t = e.keep(e.empty([1301], 'f32', true));
    e.write(t, data);
    expect(e.pool.getStats().liveBytes - base).toBe(1301 * 4);
    expect(sizeClass(1301 * 4)).toBeGreaterThan(1301 * 4);
    assertClose(await t.read(), data, { rtol: 0, atol: 0 }, 'exact');
    t.dispose();
    expect(e.pool.getStats().liveBytes).toBe(base);
  });

  it('frees everything a scope created except its result, also on error', async () => {
    const e = await testEngine();
    const base = e.pool.getStats().liveBytes;
    const kept = e.scope(() => {
      e.zeros([1000]);
      const a = e.full([3, 4], 2);
      return { a, list: [e.zeros([5])] };
    });
    expect(e.pool.getStats().liveBytes).toBe(base + 256 * 2);
    assertClose(await kept.a.read(), new Float32Array(12).fill(2), { atol: 0 }, 'kept');
    kept.a.dispose();
    kept.list[0].dispose();
    expect(e.pool.getStats().liveBytes).toBe(base);
    expect(() =>
      e.scope(() => {
        e.zeros([4096]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(e.pool.getStats().liveBytes).toBe(base);
  });

  it('exact-size tensors (weights): no size-class rounding, destroyed on release; writeBytes fills them', async () => {
    const e = await testEngine();
    const s0 = e.pool.getStats();
    const t = e.empty([1001], 'f16', true); // 2002 bytes → a 2004-byte buffer (size class: 2048)
    expect(e.pool.getStats().liveBytes - s0.liveBytes).toBe(2004);
    const halves = new Uint16Array(1001).map((_, i) => 0x3c00 + (i % 7)); // 1 + i·2⁻¹⁰
    e.writeBytes(t, new Uint8Array(halves.buffer, 0, 1000), 0); // odd tail: padded to whole words
    e.writeBytes(t, new Uint8Array(halves.buffer, 1000), 1000);
    const got = await t.read();
    expect(Array.from(got.slice(0, 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 0].map((k) => 1 + k / 1024));
    expect(got[1000]).toBe(1 + (1000 % 7) / 1024);
    expect(() => e.writeBytes(t, new Uint8Array(4), 2)).toThrow(/offset/);
    t.dispose();
    const s1 = e.pool.getStats();
    expect(s1.liveBytes).toBe(s0.liveBytes);
    expect(s1.freeBytes).toBe(s0.freeBytes); // not kept for reuse
    expect(s1.allocatedBytes).toBe(s0.allocatedBytes);
  });

  it('copy is new memory with the same contents, ordered with the kernels around it', async () => {
    const e = await testEngine();
    await e.scopeAsync(async () => {
      const t = e.tensor([1, 2, 3, 4, 5], [5]);
      e.fill(t, 7); // a dispatch before the copy…
      const c = e.copy(t);
      e.fill(t, 9); // …and one after: the copy must see 7s and keep them
      expect(c.buffer).not.toBe(t.buffer);
      assertClose(await c.read(), [7, 7, 7, 7, 7], { atol: 0 }, 'copy');
      assertClose(await t.read(), [9, 9, 9, 9, 9], { atol: 0 }, 'source');
    });
  });

  it('reshape is a view; reading a disposed tensor fails clearly', async () => {
    const e = await testEngine();
    const t = e.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    t.dispose();
    assertClose(await v.read(), [1, 2, 3, 4, 5, 6], { atol: 0 }, 'view outlives its source');
    v.dispose();
    expect(() => v.buffer).toThrow(/freed GPU buffer/);
    expect(() => e.tensor([1, 2], [3])).toThrow(/2 values for shape \[3\]/);
  });

  it('reports WGSL errors with the kernel name and line', async () => {
    const e = await testEngine();
    const bad = defineKernel({
      name: 'bad_kernel',
      storage: [],
      uniforms: false,
      code: '@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }',
    });
    await expect(e.compile(bad)).rejects.toThrow(GpuValidationError);
    await expect(e.compile(bad)).rejects.toThrow(/bad_kernel: line 1/);
  });

  it('keeps the type of an uncaptured GPU error: out of memory is GpuOutOfMemoryError, kind out-of-memory', async () => {
    const e = await testEngine();
    // The device's own error objects, delivered the way the device reports uncaptured errors.
    e.device.onuncapturederror?.call(
      e.device,
      new GPUUncapturedErrorEvent('uncapturederror', { error: new GPUOutOfMemoryError('no room for 3 GB') }),
    );
    const oom = await e.sync().catch((x: unknown) => x);
    expect(oom).toBeInstanceOf(GpuOutOfMemoryError);
    expect((oom as GpuOutOfMemoryError).kind).toBe('out-of-memory');
    expect((oom as Error).message).toBe('GPU out of memory: no room for 3 GB');
    e.device.onuncapturederror?.call(
      e.device,
      new GPUUncapturedErrorEvent('uncapturederror', { error: new GPUValidationError('bad binding') }),
    );
    const invalid = await e.sync().catch((x: unknown) => x);
    expect(invalid).toBeInstanceOf(GpuValidationError);
    expect((invalid as GpuValidationError).kind).toBe('internal');
    await e.sync(); // reported once
  });
});

describe('autograd', () => {
  it('accumulates leaf gradients across backward calls and through reshape', async () => {
    const e = await testEngine();
    const xs = rng(2).normals(12);
    const x = e.parameter(xs, [3, 4], 'x');
    const ones = e.full([2, 6], 1);
    for (let k = 0; k < 2; k++) {
      const y = e.scope(() => silu(x.reshape([2, 6])));
      e.backward(y, ones);
      y.dispose();
    }
    const once = siluBackwardRef(xs, new Float64Array(12).fill(1));
    assertClose(
      await x.grad!.read(),
      once.map((g) => 2 * g),
      { rtol: 1e-6 },
      'x.grad after two backward calls',
    );
    expect(x.grad!.shape).toEqual([3, 4]);
    x.dispose();
    ones.dispose();
  });

  it('checkpoint gives the same gradients and keeps no intermediates alive until backward', async () => {
    const e = await testEngine();
    const n = 64 * 1024;
    const xs = rng(3).normals(n, 2);
    const chain = (t: Tensor) => {
      for (let i = 0; i < 6; i++) t = silu(t);
      return t;
    };
    let ref: Float64Array = Float64Array.from(xs);
    const stack: Float64Array[] = [];
    for (let i = 0; i < 6; i++) {
      stack.push(ref);
      ref = siluForwardRef(ref);
    }
    let g: Float64Array = new Float64Array(n).fill(1);
    for (let i = 5; i >= 0; i--) g = siluBackwardRef(stack[i], g);

    const grads: Float32Array[] = [];
    const held: number[] = [];
    for (const useCheckpoint of [false, true]) {
      const x = e.parameter(xs, [n], 'x');
      const dY = e.full([n], 1);
      const before = e.pool.getStats().liveBytes;
      const y = e.scope(() => (useCheckpoint ? checkpoint(e, chain, [x]) : chain(x)));
      held.push(e.pool.getStats().liveBytes - before);
      assertClose(await y.read(), ref, { rtol: 1e-5 }, 'forward');
      e.backward(y, dY);
      grads.push(await x.grad!.read());
      y.dispose();
      dY.dispose();
      x.dispose();
    }
    assertClose(grads[0], g, { rtol: 1e-5 }, 'grad without checkpoint');
    assertClose(grads[1], grads[0], { rtol: 1e-6 }, 'grad with checkpoint');
    expect(e.tape.length).toBe(0);
    // Between forward and backward: without checkpointing the tape holds the 5
    // intermediates (plus y); with it only y is alive.
    expect(held[0]).toBe(6 * n * 4);
    expect(held[1]).toBe(n * 4);
  });

  it('backward frees the tape: live bytes return to the baseline after a training step', async () => {
    const e = await testEngine();
    const base = e.pool.getStats().liveBytes;
    const w = e.parameter(rng(4).normals(300), [300], 'w');
    const opt = new Adam(e, [w], { lr: 1e-2 });
    const afterSetup = e.pool.getStats().liveBytes;
    for (let step = 0; step < 3; step++) {
      e.scope(() => {
        const y = silu(silu(w));
        e.backward(y, e.full([300], 1));
      });
      opt.step();
      opt.zeroGrad();
      expect(e.pool.getStats().liveBytes).toBe(afterSetup);
    }
    opt.dispose();
    w.dispose();
    expect(e.pool.getStats().liveBytes).toBe(base);
  });
});

describe('Adam / AdamW', () => {
  it.each([
    ['Adam + L2', false],
    ['AdamW', true],
  ])('%s matches the float64 reference over 3 steps', async (_name, decoupled) => {
    const e = await testEngine();
    const r = rng(decoupled ? 5 : 6);
    const n = 517;
    const p0 = r.normals(n);
    const gs = [r.normals(n), r.normals(n, 0.1), r.normals(n, 10)];
    const w = e.parameter(p0, [n], 'w');
    const opt = new Adam(e, [w], { lr: 1e-2, weightDecay: 0.1, decoupled });
    const p = Float64Array.from(p0);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    for (let t = 1; t <= 3; t++) {
      w.grad = e.keep(e.tensor(gs[t - 1], [n]));
      opt.step();
      opt.zeroGrad();
      adamStepRef(p, m, v, gs[t - 1], t, opt.options);
    }
    assertClose(await w.read(), p, { rtol: 1e-6, atol: 1e-6 }, 'parameters');
    opt.dispose();
    w.dispose();
  });
});

describe('device limits', () => {
  // y[i] = x[i] * 2 over whatever range each binding covers.
  const double = defineKernel({
    name: 'double_test',
    storage: ['read', 'write'],
    uniforms: true,
    code: `struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { y[g.x] = 2.0 * x[g.x]; }
}`,
  });

  it('binds sub-ranges (BufferSlice) at aligned offsets', async () => {
    const e = await testEngine();
    const align = e.bindingAlignment / 4;
    const n = 3 * align + 5;
    const xs = rng(3).normals(n);
    await e.scopeAsync(async () => {
      const x = e.tensor(xs, [n]);
      const y = e.zeros([n]);
      // Second chunk only: elements [align, 3·align + 5).
      const count = n - align;
      e.dispatch(double, [e.slice(x, align, count), e.slice(y, align, count)], [Math.ceil(count / 64)], [u32(count)]);
      const want = xs.map((v, i) => (i < align ? 0 : 2 * v));
      assertClose(await y.read(), want, { atol: 0 }, 'doubled second chunk');
      expect(() => e.dispatch(double, [{ tensor: x, offset: 4, size: 16 }, y], [1], [u32(1)])).toThrow(/multiple of/);
    });
  });

  it('refuses a binding above the limit before encoding, naming kernel, shapes and limit', async () => {
    const e = await testEngine();
    const before = e.maxBindingBytes;
    e.setBindingLimit(1024);
    try {
      expect(e.maxBindingBytes).toBe(1024);
      await e.scopeAsync(async () => {
        const x = e.empty([16, 32]); // 2048 bytes
        const y = e.empty([16, 32]);
        const before = e.dispatchCount;
        let err: unknown;
        try {
          e.dispatch(double, [x, y], [8], [u32(512)]);
        } catch (caught) {
          err = caught;
        }
        expect(err).toBeInstanceOf(BindingLimitError);
        expect(String(err)).toMatch(
          /double_test: binding 0 \(f32\[16,32\]\) is 2048 bytes, above the storage binding limit of 1024/,
        );
        expect(e.dispatchCount).toBe(before);
      });
    } finally {
      e.setBindingLimit(undefined);
    }
    expect(e.maxBindingBytes).toBe(before);
  });

  it('fill, accumulate and cast split big tensors into chunks under a low limit', async () => {
    const e = await testEngine();
    const n = 1000; // 4000 bytes: four chunks of 1024
    const xs = rng(4).normals(n);
    e.setBindingLimit(1024);
    try {
      await e.scopeAsync(async () => {
        const before = e.dispatchCount;
        const y = e.full([n], 0.5);
        expect(e.dispatchCount - before).toBe(4);
        e.accumulate(y, e.tensor(xs, [n]));
        assertClose(
          await y.read(),
          xs.map((v) => v + 0.5),
          { rtol: 1e-7, atol: 0 },
          'filled + accumulated',
        );
        if (e.f16) {
          const h = e.cast(y, 'f16');
          assertClose(await h.read(), roundToF16(xs.map((v) => v + 0.5)), { atol: 0 }, 'cast to f16');
        }
      });
    } finally {
      e.setBindingLimit(undefined);
    }
  });

  it('a GPU validation error on a first dispatch is thrown at the next dispatch, with the kernel named', async () => {
    const e = await testEngine();
    const tooMany = defineKernel({ ...double, name: 'double_too_many_workgroups', code: `${double.code}\n// variant` });
    await e.scopeAsync(async () => {
      const x = e.zeros([4]);
      const y = e.zeros([4]);
      // More workgroups than a dimension allows: only the GPU's validation sees it.
      e.dispatch(tooMany, [x, y], [70000], [u32(4)]);
      await e.device.queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 10));
      expect(() => e.fill(x, 1)).toThrow(/double_too_many_workgroups \(f32\[4\], f32\[4\]\)/);
      // Reported once; the engine works again afterwards.
      e.fill(x, 1);
      assertClose(await x.read(), [1, 1, 1, 1], { atol: 0 }, 'after the error');
    });
  });
});
