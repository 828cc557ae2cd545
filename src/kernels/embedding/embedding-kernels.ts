// WGSL gather (forward) and gradient scatter (backward) of an embedding table, and their
// dispatch (no autograd here: see embedding.ts).
//
// WebGPU has no float atomics, so the backward cannot let every position add its row into
// dTable. The ids come from the CPU anyway, so the CPU groups them: for each distinct id the
// list of positions that use it (a CSR "scatter plan"). One invocation per (distinct id,
// channel) then sums its positions in a fixed order: no races, deterministic, and the work
// is O(P·C) however large the vocabulary (only the zero fill of dTable touches all V rows).
//
// A table above the storage binding limit (CLIP's 49408×768 fp32 is 152 MB, the limit often
// 128 MiB) is bound in row ranges: the gather runs once per range and writes only the
// positions whose id falls in it; the scatter gets one plan per range, rows made relative.
import { ELEMENTWISE_WG } from '../../engine/builtin-kernels.ts';
import type { Engine } from '../../engine/engine.ts';
import { defineKernel, grid1d, u32, WGSL_FLAT_INDEX } from '../../engine/kernel.ts';
import { chunkRows } from '../../engine/split.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { elementwiseMain } from '../elementwise-main.ts';

const forwardKernel = defineKernel({
  name: 'embedding_forward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, C: u32, base: u32, rows: u32 }
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i < p.n) {
    let pos = i / p.C;
    let c = i - pos * p.C;
    // Rows [base, base + rows) are bound (from table row base on); ids below base wrap to
    // large u32 values and fail the test too.
    let row = ids[pos] - p.base;
    if (row < p.rows) { y[i] = table[row * p.C + c]; }
  }
}`,
});

// plan = [rows (U) | starts (U + 1) | positions (P)]: distinct id k owns positions
// plan[2U+1+starts[k] .. 2U+1+starts[k+1]), in increasing order.
const backwardKernel = defineKernel({
  name: 'embedding_backward',
  storage: ['read', 'read', 'write'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, C: u32, U: u32 }
@group(0) @binding(0) var<storage, read> plan: array<u32>;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read_write> dTable: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${WGSL_FLAT_INDEX}
${elementwiseMain()}
  if (i >= p.n) { return; }
  let k = i / p.C;
  let c = i - k * p.C;
  let positions = 2u * p.U + 1u;
  var acc = 0.0;
  for (var q = plan[p.U + k]; q < plan[p.U + k + 1u]; q++) {
    acc += dY[plan[positions + q] * p.C + c];
  }
  dTable[plan[k] * p.C + c] = acc;
}`,
});

/**
 * A tensor holding 32-bit integers (its dtype says f32: the engine has no integer dtype
 * yet, and kernels declare the binding as array<u32>/array<i32>). Never read it as floats.
 */
export function uploadWords(engine: Engine, words: Uint32Array | Int32Array): Tensor {
  const t = engine.empty([Math.max(1, words.length)]);
  // Queue writes run before commands still being recorded (see Engine.write).
  engine.flush();
  engine.device.queue.writeBuffer(t.buffer, 0, words.buffer, words.byteOffset, words.byteLength);
  return t;
}

/** Ids as validated integers in [0, V); throws on anything else (a bad id would read out of bounds). */
export function checkIds(ids: ArrayLike<number>, V: number, what = 'embedding'): Uint32Array {
  if (ids.length === 0) throw new Error(`${what}: no ids`);
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw new RangeError(`${what}: id ${id} at position ${i} is not an integer in [0, ${V})`);
    }
    out[i] = id;
  }
  return out;
}

/** The CSR scatter plan of the backward kernel (see the layout above), distinct ids ascending. */
export function scatterPlan(ids: ArrayLike<number>): { plan: Uint32Array; distinct: number } {
  return scatterPlanAt(
    ids,
    Array.from({ length: ids.length }, (_, p) => p),
  );
}

/** scatterPlan over the given positions only (the others belong to another row range). */
function scatterPlanAt(ids: ArrayLike<number>, positions: readonly number[]): { plan: Uint32Array; distinct: number } {
  const byId = new Map<number, number[]>();
  for (const p of positions) {
    const list = byId.get(ids[p]);
    if (list) list.push(p);
    else byId.set(ids[p], [p]);
  }
  const rows = [...byId.keys()].sort((a, b) => a - b);
  const U = rows.length;
  const plan = new Uint32Array(2 * U + 1 + positions.length);
  let q = 0;
  rows.forEach((row, k) => {
    plan[k] = row;
    plan[U + k] = q;
    for (const pos of byId.get(row)!) plan[2 * U + 1 + q++] = pos;
  });
  plan[2 * U] = q;
  return { plan, distinct: U };
}

function checkTable(table: Tensor, what: string): [number, number] {
  if (table.dtype !== 'f32') throw new Error(`${what}: f32 only, got ${table}`);
  if (table.rank !== 2) throw new Error(`${what}: table must be (V, C), got [${table.shape.join(',')}]`);
  return [table.shape[0], table.shape[1]];
}

// ids: (…idsShape) flattened to (P), table: (V, C) → y: (…idsShape, C)
export function embeddingForward(
  engine: Engine,
  ids: ArrayLike<number>,
  table: Tensor,
  idsShape: readonly number[] = [ids.length],
): Tensor {
  const [V, C] = checkTable(table, 'embedding');
  const words = checkIds(ids, V);
  if (idsShape.reduce((a, b) => a * b, 1) !== ids.length) {
    throw new Error(`embedding: idsShape [${idsShape.join(',')}] does not hold ${ids.length} ids`);
  }
  const y = engine.empty([...idsShape, C]);
  const idsBuffer = uploadWords(engine, words);
  const chunk = chunkRows(engine, `embedding_forward (table [${V},${C}])`, V, [C * 4]);
  for (let base = 0; base < V; base += chunk) {
    const rows = Math.min(chunk, V - base);
    // Ranges no id falls in have nothing to write.
    if (chunk < V && !words.some((id) => id >= base && id < base + rows)) continue;
    engine.dispatch(
      forwardKernel,
      [idsBuffer, engine.slice(table, base * C, rows * C), y],
      grid1d(y.size, ELEMENTWISE_WG),
      [u32(y.size), u32(C), u32(base), u32(rows)],
    );
  }
  idsBuffer.dispose(); // the pool hands it out again only to later commands
  return y;
}

// ids: (P), dY: (P, C) in any shape of that size → dTable: (V, C), zero outside the rows used
export function embeddingBackward(engine: Engine, ids: ArrayLike<number>, dY: Tensor, V: number): Tensor {
  if (dY.dtype !== 'f32') throw new Error(`embedding backward: f32 only, got ${dY}`);
  const C = dY.size / ids.length;
  if (!Number.isInteger(C) || C < 1) throw new Error(`embedding backward: ${dY} does not match ${ids.length} ids`);
  const words = checkIds(ids, V, 'embedding backward');
  const dTable = engine.zeros([V, C]);
  const chunk = chunkRows(engine, `embedding_backward (dTable [${V},${C}])`, V, [C * 4]);
  for (let base = 0; base < V; base += chunk) {
    const rows = Math.min(chunk, V - base);
    // Ids in this range, relative to it; positions of the others are simply absent.
    const rel = new Int32Array(words.length).fill(-1);
    words.forEach((id, pos) => {
      if (id >= base && id < base + rows) rel[pos] = id - base;
    });
    const positions = [...rel.keys()].filter((pos) => rel[pos] >= 0);
    if (positions.length === 0) continue;
    const { plan, distinct } = scatterPlanAt(rel, positions);
    const planBuffer = uploadWords(engine, plan);
    const n = distinct * C;
    engine.dispatch(
      backwardKernel,
      [planBuffer, dY, engine.slice(dTable, base * C, rows * C)],
      grid1d(n, ELEMENTWISE_WG),
      [u32(n), u32(C), u32(distinct)],
    );
    planBuffer.dispose();
  }
  return dTable;
}

export const embeddingKernels = [forwardKernel, backwardKernel];
