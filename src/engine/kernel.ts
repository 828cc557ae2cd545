// How a WGSL compute kernel is declared and dispatched. Binding convention (group 0):
// storage buffers at bindings 0..n-1 in the order of `storage`, then — when the kernel
// takes parameters — one uniform struct at binding n.

export type StorageAccess = 'read' | 'write';

export interface KernelDef {
  /** Short name for errors and benchmarks, e.g. "matmul_forward_tiled". */
  name: string;
  /** Complete WGSL source with one compute entry point. */
  code: string;
  /** Access of each storage binding, in binding order ('write' means read_write). */
  storage: readonly StorageAccess[];
  /** Whether binding `storage.length` is a uniform parameter struct. */
  uniforms: boolean;
  entryPoint?: string;
}

export const defineKernel = (def: KernelDef): KernelDef => def;

/** A 4-byte uniform value. A params struct is a sequence of these, in declaration order. */
export type Param = { readonly t: 'u32' | 'i32' | 'f32'; readonly v: number };
export const u32 = (v: number): Param => ({ t: 'u32', v });
export const i32 = (v: number): Param => ({ t: 'i32', v });
export const f32 = (v: number): Param => ({ t: 'f32', v });

/** Bytes of a params struct, padded to 16 as uniform buffers require. */
export function packParams(params: readonly Param[], into: DataView, offset: number): number {
  params.forEach((p, i) => {
    const o = offset + i * 4;
    if (p.t === 'u32') {
      if (!Number.isInteger(p.v) || p.v < 0 || p.v > 0xffffffff) throw new RangeError(`u32 param ${p.v}`);
      into.setUint32(o, p.v, true);
    } else if (p.t === 'i32') into.setInt32(o, p.v, true);
    else into.setFloat32(o, p.v, true);
  });
  return Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
}

/** Largest number of workgroups allowed along one dispatch dimension. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * Workgroup grid covering `count` workgroups, spilling into y when x is full. Kernels
 * recover the flat workgroup index with `wid.x + wid.y * nwg.x` (see WGSL_FLAT_INDEX).
 */
export function grid(count: number): [number, number, number] {
  if (count <= MAX_WORKGROUPS_PER_DIM) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(count / y), y, 1];
}

/** Grid for one invocation per element, `workgroupSize` invocations per workgroup. */
export const grid1d = (elements: number, workgroupSize: number): [number, number, number] =>
  grid(Math.ceil(elements / workgroupSize));

/**
 * WGSL for the flat invocation index under grid()/grid1d(): declare the entry point as
 * `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
 *          @builtin(local_invocation_index) lid: u32)` and use `flatIndex(wid, nwg, lid, WG)`.
 */
export const WGSL_FLAT_INDEX = /* wgsl */ `
fn flatIndex(wid: vec3u, nwg: vec3u, lid: u32, wg: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg + lid;
}
fn flatWorkgroup(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}
`;
