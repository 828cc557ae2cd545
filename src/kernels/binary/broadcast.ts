// NumPy broadcasting: shape arithmetic on the CPU and the WGSL that maps an output index
// to the offsets of up to two broadcast operands. Dimensions that no operand treats
// differently are merged first, so the common cases ((B,N,C)+(C), (B,C,H,W)+(1,C,1,1))
// cost one or two div/mod pairs per element whatever the tensor's rank.
import { u32, f32, type Param } from '../../engine/kernel.ts';

/** Most merged dimensions a broadcast kernel handles (two vec4u per stride array). */
export const MAX_BROADCAST_RANK = 8;

/** The shape NumPy gives `a ⊕ b`: aligned on the right, each dimension equal or 1. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`cannot broadcast [${a.join(',')}] with [${b.join(',')}]`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Whether `from` broadcasts to exactly `to` (what a reduce-to-shape can undo). */
export function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  const offset = to.length - from.length;
  return from.every((d, i) => d === 1 || (i + offset >= 0 && d === to[i + offset]));
}

export interface BroadcastLayout {
  /** Merged output dimensions, outermost first. */
  dims: number[];
  /** Per operand: element stride along each merged dimension (0 where broadcast). */
  strides: number[][];
}

/**
 * Merged dimensions and strides for reading `operands` (each broadcastable to `out`) at
 * every output index. Two adjacent dimensions merge when every operand steps through
 * them as one (both contiguous, or both broadcast).
 */
export function broadcastLayout(out: readonly number[], operands: readonly (readonly number[])[]): BroadcastLayout {
  for (const s of operands) {
    if (!broadcastsTo(s, out)) throw new Error(`[${s.join(',')}] does not broadcast to [${out.join(',')}]`);
  }
  const dims: number[] = [];
  const strides: number[][] = operands.map(() => []);
  // Innermost first, so each operand's contiguous stride is a running product.
  const running = operands.map(() => 1);
  for (let d = out.length - 1; d >= 0; d--) {
    if (out[d] === 1) continue;
    const own = operands.map((s, k) => {
      const sd = s[d - (out.length - s.length)] ?? 1;
      if (sd === 1) return 0;
      const st = running[k];
      running[k] *= sd;
      return st;
    });
    const last = dims.length - 1;
    // Stride 0 merges with stride 0 here too: 0 = 0 · size.
    if (last >= 0 && own.every((st, k) => st === strides[k][last] * dims[last])) dims[last] *= out[d];
    else {
      dims.push(out[d]);
      own.forEach((st, k) => strides[k].push(st));
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    strides.forEach((s) => s.push(0));
  }
  if (dims.length > MAX_BROADCAST_RANK) {
    throw new Error(`broadcast of rank ${dims.length} after merging; at most ${MAX_BROADCAST_RANK} supported`);
  }
  dims.reverse();
  strides.forEach((s) => s.reverse());
  return { dims, strides };
}

const padTo = (v: readonly number[], fill: number): Param[] =>
  Array.from({ length: MAX_BROADCAST_RANK }, (_, i) => u32(v[i] ?? fill));

/**
 * Params for WGSL_BROADCAST's struct, in order. `s` and `t` are two free scalars the
 * kernel may use (a scale, an offset). A missing second operand reads at offset 0.
 */
export function broadcastParams(n: number, layout: BroadcastLayout, s = 1, t = 0): Param[] {
  const [sa, sb = layout.dims.map(() => 0)] = layout.strides;
  return [u32(n), u32(layout.dims.length), f32(s), f32(t), ...padTo(layout.dims, 1), ...padTo(sa, 0), ...padTo(sb, 0)];
}

/**
 * WGSL: the params struct (binding given by the caller as `p`) and `broadcastOffsets(i)`,
 * the offsets into operands a and b of output element i.
 */
export const WGSL_BROADCAST = /* wgsl */ `
struct Params {
  n: u32, rank: u32, s: f32, t: f32,
  dims: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2>,
}
fn broadcastOffsets(i: u32) -> vec2u {
  // One merged dimension (same shapes, a scalar operand): no index math. A uniform branch,
  // and integer division is slow on CPU adapters (not vectorised).
  if (p.rank == 1u) { return i * vec2u(p.sa[0][0], p.sb[0][0]); }
  var rem = i;
  var o = vec2u(0u, 0u);
  for (var d = p.rank; d > 0u; d--) {
    let q = (d - 1u) / 4u;
    let r = (d - 1u) % 4u;
    let size = p.dims[q][r];
    let c = rem % size;
    rem = rem / size;
    o += c * vec2u(p.sa[q][r], p.sb[q][r]);
  }
  return o;
}
`;
