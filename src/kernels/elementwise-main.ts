// The entry point shared by the one-invocation-per-element kernels of every family: the
// flat invocation index `i` over workgroups of ELEMENTWISE_WG (WGSL_FLAT_INDEX must be in
// the module). Each kernel keeps its own bounds check and math after it.
import { ELEMENTWISE_WG } from '../engine/builtin-kernels.ts';

/** main() with the builtins flatIndex() and flatWorkgroup() take. */
export const WGSL_ELEMENTWISE_ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32)`;

/** Opens main() and names this invocation's element `i`; the caller closes the brace. */
export const elementwiseMain = (i = 'i'): string => /* wgsl */ `@compute @workgroup_size(${ELEMENTWISE_WG})
${WGSL_ELEMENTWISE_ENTRY} {
  let ${i} = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);`;
