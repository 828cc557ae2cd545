// The few kernels the engine itself needs (seeding and accumulating gradients, copies).
// They are plain element-wise loops; their tests live in engine.test.ts.
import type { DType } from './dtype.ts';
import { defineKernel, WGSL_FLAT_INDEX, type KernelDef } from './kernel.ts';

export const ELEMENTWISE_WG = 256;

const header = (dtype: DType) => (dtype === 'f16' ? 'enable f16;\n' : '');

const cache = new Map<string, KernelDef>();
const memo = (key: string, make: () => KernelDef): KernelDef => {
  let k = cache.get(key);
  if (!k) cache.set(key, (k = make()));
  return k;
};

// y: (n) ← value
export const fillKernel = (dtype: DType): KernelDef =>
  memo(`fill_${dtype}`, () =>
    defineKernel({
      name: `fill_${dtype}`,
      storage: ['write'],
      uniforms: true,
      code: `${header(dtype)}
struct Params { n: u32, value: f32 }
@group(0) @binding(0) var<storage, read_write> y: array<${dtype}>;
@group(0) @binding(1) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = ${dtype}(p.value); }
}`,
    }),
  );

// y: (n) += x: (n)
export const accumulateKernel = (dtype: DType): KernelDef =>
  memo(`accumulate_${dtype}`, () =>
    defineKernel({
      name: `accumulate_${dtype}`,
      storage: ['write', 'read'],
      uniforms: true,
      code: `${header(dtype)}
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<${dtype}>;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = y[i] + x[i]; }
}`,
    }),
  );

// y: (n) ← x: (n), converting between dtypes when they differ.
export const castKernel = (from: DType, to: DType): KernelDef =>
  memo(`cast_${from}_${to}`, () =>
    defineKernel({
      name: `cast_${from}_${to}`,
      storage: ['read', 'write'],
      uniforms: true,
      code: `${header(from === 'f16' || to === 'f16' ? 'f16' : 'f32')}
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<${from}>;
@group(0) @binding(1) var<storage, read_write> y: array<${to}>;
@group(0) @binding(2) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i < p.n) { y[i] = ${to}(x[i]); }
}`,
    }),
  );
