// fp16 weights in fp32 kernels. Frozen weights (linear and conv2d) stay fp16 on the GPU —
// half the memory of fp32 — and kernels read them through an accessor that widens each
// value to f32, so every product still accumulates in f32:
//  - 'f16'  (adapter with shader-f16): the binding is array<f16> / array<vec4<f16>>;
//  - 'f16p' (no shader-f16): the same bytes bound as array<u32> / array<vec2<u32>> (two
//           halves per word) and widened with unpack2x16float.
// A variant is derived from the kernel's fp32 WGSL by rewriting one read-only binding: its
// declaration and every `name[i]` access, which becomes `name_ld(u32(i))`. The weight is
// never cast to an fp32 copy, so nothing fp32-sized is saved on the autograd tape either.
import type { Engine } from './engine.ts';
import type { KernelDef } from './kernel.ts';
import type { Tensor } from './tensor.ts';

/** How a kernel reads an fp16 weight binding. */
export type WeightStore = 'f16' | 'f16p';

/** The store an fp16 tensor is read with on this engine (null for fp32 tensors). */
export function weightStore(engine: Engine, t: Tensor): WeightStore | null {
  if (t.dtype === 'f32') return null;
  return engine.f16 ? 'f16' : 'f16p';
}

const variants = new WeakMap<KernelDef, Map<string, KernelDef>>();

/**
 * `kernel` with its read-only storage binding `operand` (an array of f32 or vec4 of f32, or
 * of f16 in an f16 kernel) read as fp16 in `store`. Memoized per kernel, so pipelines cache.
 */
export function weightVariant(kernel: KernelDef, operand: string, store: WeightStore | null): KernelDef {
  if (!store) return kernel;
  let byKey = variants.get(kernel);
  if (!byKey) variants.set(kernel, (byKey = new Map()));
  const key = `${operand}:${store}`;
  let v = byKey.get(key);
  if (!v) {
    v = {
      ...kernel,
      name: `${kernel.name}_${operand}${store}`,
      code: rewriteOperand(kernel.code, operand, store, kernel.name),
    };
    byKey.set(key, v);
  }
  return v;
}

const DECL = (operand: string) =>
  new RegExp(
    `var<storage,\\s*read>\\s+${operand}\\s*:\\s*array<\\s*(f32|f16|vec4f|vec4<f32>|vec4h|vec4<f16>)\\s*>\\s*;`,
  );

/** Rewrites the declaration and accesses of `operand` (exported for tests). */
export function rewriteOperand(code: string, operand: string, store: WeightStore, what = 'kernel'): string {
  const decl = DECL(operand).exec(code);
  if (!decl) throw new Error(`${what}: no read-only f32/f16 storage binding named '${operand}' to read as ${store}`);
  const vec = decl[1].startsWith('vec4');
  const ld = `${operand}_ld`;
  let declaration: string;
  let accessor: string;
  if (store === 'f16') {
    declaration = `var<storage, read> ${operand}: array<${vec ? 'vec4<f16>' : 'f16'}>;`;
    accessor = vec
      ? `fn ${ld}(i: u32) -> vec4f { return vec4f(${operand}[i]); }`
      : `fn ${ld}(i: u32) -> f32 { return f32(${operand}[i]); }`;
  } else if (vec) {
    // Four halves = two words; the vec4 index i is element 4i, i.e. word pair i.
    declaration = `var<storage, read> ${operand}: array<vec2<u32>>;`;
    accessor = `fn ${ld}(i: u32) -> vec4f { let w = ${operand}[i]; return vec4f(unpack2x16float(w.x), unpack2x16float(w.y)); }`;
  } else {
    declaration = `var<storage, read> ${operand}: array<u32>;`;
    accessor = `fn ${ld}(i: u32) -> f32 { return unpack2x16float(${operand}[i >> 1u])[i & 1u]; }`;
  }
  let body = replaceAccesses(code.replace(decl[0], '@@DECL@@'), operand, ld, what);
  body = body.replace('@@DECL@@', `${declaration}\n${accessor}`);
  if (store === 'f16' && !/\benable f16;/.test(body)) body = `enable f16;\n${body}`;
  return body;
}

// `name[expr]` → `ld(u32(expr))`, brackets inside expr matched; `x.name[` and `fooname[` untouched.
function replaceAccesses(code: string, operand: string, ld: string, what: string): string {
  const re = new RegExp(`(?<![\\w.])${operand}\\s*\\[`, 'g');
  let out = '';
  let last = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < code.length && depth > 0; i++) {
      if (code[i] === '[') depth++;
      else if (code[i] === ']') depth--;
    }
    if (depth !== 0) throw new Error(`${what}: unbalanced brackets after '${operand}['`);
    const expr = code.slice(m.index + m[0].length, i - 1);
    out += `${code.slice(last, m.index)}${ld}(u32(${replaceAccesses(expr, operand, ld, what)}))`;
    last = i;
    re.lastIndex = i;
  }
  return out + code.slice(last);
}
