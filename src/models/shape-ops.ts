// The shape-only backend: runs a model's code path without data. Used to list the
// parameters a config implies (names and shapes, to compare with real checkpoints) and
// to catch shape errors in a config before any download or GPU work.
import type { ParamSource } from './params.ts';
import type { AttentionOptions, ConvOptions, TensorOps } from './tensor-ops.ts';

export interface ShapeTensor {
  readonly shape: readonly number[];
}

const st = (shape: readonly number[]): ShapeTensor => ({ shape: [...shape] });
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

/** numpy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(op, `cannot broadcast [${a}] with [${b}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function convOutputSize(inSize: number, kernel: number, stride: number, padBefore: number, padAfter: number) {
  return Math.floor((inSize + padBefore + padAfter - kernel) / stride) + 1;
}

export function normalizePadding(p: ConvOptions['padding']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  if (typeof p === 'number') return [p, p, p, p];
  return [p[0], p[1], p[2], p[3]];
}

export class ShapeOps implements TensorOps<ShapeTensor, { shape: readonly number[] }, { shape: readonly number[] }> {
  readonly backend = 'shape' as const;

  shape(x: ShapeTensor) {
    return x.shape;
  }

  constant(values: ArrayLike<number>, shape: readonly number[]) {
    if (values.length !== size(shape)) fail('constant', `${values.length} values for shape [${shape}]`);
    return st(shape);
  }

  linear(x: ShapeTensor, w: ShapeTensor, b?: ShapeTensor | null) {
    const inF = x.shape[x.shape.length - 1];
    if (w.shape.length !== 2 || w.shape[1] !== inF) fail('linear', `x [${x.shape}] with weight [${w.shape}]`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) fail('linear', `bias [${b.shape}] for weight [${w.shape}]`);
    return st([...x.shape.slice(0, -1), w.shape[0]]);
  }

  matmul(a: ShapeTensor, b: ShapeTensor) {
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2) fail('matmul', `[${a.shape}] @ [${b.shape}]`);
    return st([...broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul'), m, n]);
  }

  conv2d(x: ShapeTensor, w: ShapeTensor, b: ShapeTensor | null, o: ConvOptions = {}) {
    const [B, C, H, W] = x.shape;
    const [Co, Ci, kh, kw] = w.shape;
    if (x.shape.length !== 4 || w.shape.length !== 4 || C !== Ci) fail('conv2d', `x [${x.shape}] with weight [${w.shape}]`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== Co)) fail('conv2d', `bias [${b.shape}] for ${Co} channels`);
    const s = o.stride ?? 1;
    const [pt, pl, pb, pr] = normalizePadding(o.padding);
    const Ho = convOutputSize(H, kh, s, pt, pb);
    const Wo = convOutputSize(W, kw, s, pl, pr);
    if (Ho < 1 || Wo < 1) fail('conv2d', `empty output for x [${x.shape}]`);
    return st([B, Co, Ho, Wo]);
  }

  groupNorm(x: ShapeTensor, groups: number, w: ShapeTensor, b: ShapeTensor) {
    const C = x.shape[1];
    if (C % groups !== 0) fail('groupNorm', `${C} channels not divisible into ${groups} groups`);
    if (w.shape[0] !== C || b.shape[0] !== C) fail('groupNorm', `affine [${w.shape}] for ${C} channels`);
    return st(x.shape);
  }

  layerNorm(x: ShapeTensor, w: ShapeTensor, b: ShapeTensor) {
    const C = x.shape[x.shape.length - 1];
    if (w.shape[0] !== C || b.shape[0] !== C) fail('layerNorm', `affine [${w.shape}] for ${C} features`);
    return st(x.shape);
  }

  attention(q: ShapeTensor, k: ShapeTensor, v: ShapeTensor, heads: number, _o?: AttentionOptions) {
    const [B, , C] = q.shape;
    if (q.shape.length !== 3 || k.shape.length !== 3 || v.shape.length !== 3) fail('attention', 'rank-3 inputs expected');
    if (k.shape[0] !== B || v.shape[0] !== B || k.shape[1] !== v.shape[1] || k.shape[2] !== C || v.shape[2] !== C) {
      fail('attention', `q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
    }
    if (C % heads !== 0) fail('attention', `${C} channels not divisible into ${heads} heads`);
    return st(q.shape);
  }

  silu = (x: ShapeTensor) => st(x.shape);
  gelu = (x: ShapeTensor) => st(x.shape);
  quickGelu = (x: ShapeTensor) => st(x.shape);

  geglu(x: ShapeTensor) {
    const last = x.shape[x.shape.length - 1];
    if (last % 2) fail('geglu', `odd last dim ${last}`);
    return st([...x.shape.slice(0, -1), last / 2]);
  }

  add = (a: ShapeTensor, b: ShapeTensor) => st(broadcastShapes(a.shape, b.shape, 'add'));
  sub = (a: ShapeTensor, b: ShapeTensor) => st(broadcastShapes(a.shape, b.shape, 'sub'));
  mul = (a: ShapeTensor, b: ShapeTensor) => st(broadcastShapes(a.shape, b.shape, 'mul'));
  scale = (x: ShapeTensor) => st(x.shape);

  mean(x: ShapeTensor, axes: readonly number[], keepDims = false) {
    const ax = axes.map((a) => (a < 0 ? a + x.shape.length : a));
    if (ax.some((a) => a < 0 || a >= x.shape.length)) fail('mean', `axes [${axes}] of [${x.shape}]`);
    return st(keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i)));
  }

  reshape(x: ShapeTensor, shape: readonly number[]) {
    const out = [...shape];
    const i = out.indexOf(-1);
    if (i >= 0) out[i] = size(x.shape) / -size(out);
    if (size(out) !== size(x.shape) || !out.every(Number.isInteger)) fail('reshape', `[${x.shape}] → [${shape}]`);
    return st(out);
  }

  transpose(x: ShapeTensor, perm: readonly number[]) {
    if (perm.length !== x.shape.length || [...perm].sort().some((p, i) => p !== i)) fail('transpose', `perm [${perm}]`);
    return st(perm.map((p) => x.shape[p]));
  }

  concat(xs: readonly ShapeTensor[], axis: number) {
    const first = xs[0].shape;
    let total = 0;
    for (const x of xs) {
      if (x.shape.length !== first.length || x.shape.some((d, i) => i !== axis && d !== first[i])) {
        fail('concat', `[${x.shape}] vs [${first}] on axis ${axis}`);
      }
      total += x.shape[axis];
    }
    return st(first.map((d, i) => (i === axis ? total : d)));
  }

  slice(x: ShapeTensor, axis: number, start: number, length: number) {
    if (start < 0 || length < 0 || start + length > x.shape[axis]) fail('slice', `[${start}, ${start + length}) of [${x.shape}] axis ${axis}`);
    return st(x.shape.map((d, i) => (i === axis ? length : d)));
  }

  broadcastTo(x: ShapeTensor, shape: readonly number[]) {
    const out = broadcastShapes(x.shape, shape, 'broadcastTo');
    if (out.join() !== shape.join()) fail('broadcastTo', `[${x.shape}] → [${shape}]`);
    return st(shape);
  }

  upsampleNearest2x(x: ShapeTensor) {
    const [B, C, H, W] = x.shape;
    return st([B, C, 2 * H, 2 * W]);
  }

  embedding(ids: { shape: readonly number[] }, table: ShapeTensor) {
    return st([...ids.shape, table.shape[1]]);
  }

  timestepEmbedding(t: { shape: readonly number[] }, dim: number) {
    return st([t.shape[0], dim]);
  }
}

/** A ParamSource that invents tensors of the requested shapes and records every request. */
export class ParamRecorder implements ParamSource<ShapeTensor> {
  readonly requested = new Map<string, number[]>();

  get(name: string, shape: readonly number[]): ShapeTensor {
    const prev = this.requested.get(name);
    if (prev && prev.join() !== shape.join()) throw new Error(`parameter '${name}' requested as [${prev}] and [${shape}]`);
    this.requested.set(name, [...shape]);
    return st(shape);
  }

  has(name: string): boolean {
    return this.requested.has(name);
  }
}
