import { describe, expect, it } from 'vitest';
import { testEngine, testEngineWithF16, testEngineWithoutF16 } from '../../test/engine.ts';
import { assertClose } from '../../test/close.ts';
import { rng } from '../../test/random.ts';
import { activationDtype } from './activation-dtype.ts';
import { roundToF16 } from './dtype.ts';
import { halfStorageVariant, isF32Binding, rewriteBinding } from './half-storage.ts';
import { defineKernel, grid1d, u32 } from './kernel.ts';

// y = 2·x + 1 with a scalar x and a vec4 y, then y += x·x through a compound assignment and
// a nested index: every kind of access the rewrite handles.
const kernel = defineKernel({
  name: 'half_storage_test',
  storage: ['read', 'write', 'read'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i >= p.n) { return; }
  let j = idx[i];
  y[i] = vec4f(x[4u * j], x[4u * j + 1u], x[4u * j + 2u], x[4u * j + 3u]) * 2.0 + 1.0;
  y[i] += vec4f(x[x_index(j)] * x[x_index(j)]);
}
fn x_index(j: u32) -> u32 { return 4u * j; }`,
});

describe('half storage (fp16 activations in fp32 kernels)', () => {
  it('rewrites declarations, reads, writes and compound writes of the bindings named', () => {
    const code = halfStorageVariant(kernel, [0, 1]).code;
    expect(code.startsWith('enable f16;')).toBe(true);
    expect(code).toContain('@binding(0) var<storage, read> x: array<f16>;');
    expect(code).toContain('@binding(1) var<storage, read_write> y: array<vec4<f16>>;');
    expect(code).toContain('@binding(2) var<storage, read> idx: array<u32>;');
    expect(code).toContain('y_st(u32(i), y_ld(u32(i)) + (vec4f(x_ld(u32(x_index(j))) * x_ld(u32(x_index(j))))));');
    expect(code).toContain('y_st(u32(i), vec4f(x_ld(u32(4u * j)),');
    expect(halfStorageVariant(kernel, [0, 1])).toBe(halfStorageVariant(kernel, [0, 1]));
  });

  it('leaves bindings that are not f32 arrays alone', () => {
    expect(isF32Binding(kernel, 0)).toBe(true);
    expect(isF32Binding(kernel, 1)).toBe(true);
    expect(isF32Binding(kernel, 2)).toBe(false);
    expect(rewriteBinding(kernel.code, 2)).toBeNull();
    expect(halfStorageVariant(kernel, [2])).toBe(kernel);
  });

  it('refuses accesses it cannot express', () => {
    const component = `@group(0) @binding(0) var<storage, read_write> y: array<vec4f>;\nfn f() { y[0].x = 1.0; }`;
    expect(() => rewriteBinding(component, 0, 'k')).toThrow(/k binding 0 'y': a component write/);
    const pointer = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;\nfn f() { let q = &y[0]; }`;
    expect(() => rewriteBinding(pointer, 0, 'k')).toThrow(/a pointer to an element/);
  });

  it('computes in f32 and rounds each store to fp16, against a plain-loop reference', async () => {
    const e = await testEngineWithF16();
    const n = 37;
    const xs = rng(3).normals(4 * n);
    const ids = Array.from({ length: n }, (_, i) => (i * 7) % n);
    // Reference: inputs rounded to fp16 as stored, each store rounded to fp16.
    const xh = roundToF16(xs);
    const first = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 4; c++) first[4 * i + c] = 2 * xh[4 * ids[i] + c] + 1;
    const stored = roundToF16(first);
    const want = new Float32Array(4 * n);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 4; c++) want[4 * i + c] = stored[4 * i + c] + xh[4 * ids[i]] * xh[4 * ids[i]];
    const expected = roundToF16(want);
    for (const xDtype of ['f16', 'f32'] as const) {
      await e.scopeAsync(async () => {
        const x = e.tensor(xs, [4 * n], { dtype: xDtype });
        const y = e.empty([4 * n], 'f16');
        const idx = e.empty([n]);
        e.writeBytes(idx, new Uint8Array(new Uint32Array(ids).buffer));
        e.dispatch(kernel, [x, y, idx], grid1d(n, 64), [u32(n)]);
        const got = await y.read();
        // The reference sums in float64, the GPU in f32: a sum on a rounding tie may land one
        // fp16 step (2⁻¹⁰ relative) away, never more.
        if (xDtype === 'f16') assertClose(got, expected, { atol: 0, rtol: 2 ** -10 }, 'f16 in, f16 out');
        // fp32 x: only the stores round; within one fp16 step of the f16-input result.
        else assertClose(got, expected, { atol: 1e-2, rtol: 2e-3 }, 'f32 in, f16 out');
      });
    }
  });

  it('activationDtype refuses fp16 activations where the adapter has no shader-f16', async () => {
    const e = await testEngineWithoutF16();
    await e.scopeAsync(async () => {
      const h = e.tensor([1, 2, 3, 4], [4], { dtype: 'f16' });
      expect(() => e.noGrad(() => activationDtype('op', h))).toThrow(
        /op: fp16 activations need an adapter with shader-f16/,
      );
    });
  });

  it('activationDtype: one dtype per op, fp16 only without gradients', async () => {
    const e = await testEngine();
    await e.scopeAsync(async () => {
      const a = e.zeros([2]);
      const h = e.zeros([2], 'f16');
      expect(activationDtype('op', a, a)).toBe('f32');
      expect(() => activationDtype('op', a, h)).toThrow(/op: activations of mixed dtypes/);
      expect(() => activationDtype('op', h)).toThrow(/op: fp16 activations .* are for inference/);
      expect(e.noGrad(() => activationDtype('op', h, h))).toBe('f16');
    });
  });
});
