// fp16 activations in fp32 kernels. Activations at full size are the largest tensors the
// engine makes (a 512 px VAE decoder layer is 128 channels × 512² = 128 MiB in fp32), so
// at inference they may be stored as fp16 — half the memory — where the adapter has
// `shader-f16`. Kernels are not written twice: when a dispatch binds an fp16 tensor to a
// binding that the kernel declares `array<f32>` or `array<vec4f>`, Engine.dispatch uses this
// variant of the kernel, in which that binding is `array<f16>` / `array<vec4<f16>>` and
// every access goes through an accessor:
//  - a read `x[i]` becomes `x_ld(u32(i))`, widening to f32;
//  - a write `y[i] = v;` becomes `y_st(u32(i), v);`, rounding to the nearest f16;
//  - `y[i] += v;` (and -=, *=, /=) becomes `y_st(u32(i), y_ld(u32(i)) + (v));`.
// So every sum, product, exp and statistic is still computed in f32 registers; only what is
// stored is rounded, about 2⁻¹¹ relative per store. Values beyond ±65504 do not fit fp16.
// Bindings declared otherwise (f16 already, u32 words of packed fp16 weights, atomics) are
// left alone. A shape of access the rewrite cannot express (a component write `y[i].x = v`,
// a pointer `&y[i]`) throws when the variant is made, naming the kernel and binding.
import type { KernelDef } from './kernel.ts';

const variants = new WeakMap<KernelDef, Map<string, KernelDef>>();

/**
 * `kernel` with the f32 storage bindings at `bindings` (binding indices) stored as f16.
 * Bindings not declared as f32 arrays are left as they are. Memoized, so pipelines cache.
 */
export function halfStorageVariant(kernel: KernelDef, bindings: readonly number[]): KernelDef {
  let byKey = variants.get(kernel);
  if (!byKey) variants.set(kernel, (byKey = new Map()));
  const key = bindings.join(',');
  let v = byKey.get(key);
  if (!v) {
    let code = kernel.code;
    const names: string[] = [];
    for (const b of bindings) {
      const rewritten = rewriteBinding(code, b, kernel.name);
      if (rewritten) {
        code = rewritten.code;
        names.push(rewritten.name);
      }
    }
    v = names.length ? { ...kernel, name: `${kernel.name}_h${names.join('_')}`, code } : kernel;
    byKey.set(key, v);
  }
  return v;
}

const f32Bindings = new WeakMap<KernelDef, Set<number>>();

/** Whether binding `index` of `kernel` is declared as an f32 array (so fp16 tensors need the variant). */
export function isF32Binding(kernel: KernelDef, index: number): boolean {
  let set = f32Bindings.get(kernel);
  if (!set) {
    set = new Set(kernel.storage.flatMap((_, i) => (declaration(kernel.code, i) ? [i] : [])));
    f32Bindings.set(kernel, set);
  }
  return set.has(index);
}

function declaration(code: string, index: number) {
  const re = new RegExp(
    `@binding\\(\\s*${index}\\s*\\)\\s*var<storage,\\s*(read|read_write)>\\s+(\\w+)\\s*:\\s*array<\\s*(f32|vec4f|vec4<f32>)\\s*>\\s*;`,
  );
  const m = re.exec(code);
  return m ? { text: m[0], access: m[1], name: m[2], vec: m[3] !== 'f32' } : null;
}

/** Rewrites binding `index` to f16 storage (exported for tests); null if it is not an f32 array. */
export function rewriteBinding(code: string, index: number, what = 'kernel'): { code: string; name: string } | null {
  const d = declaration(code, index);
  if (!d) return null;
  const { name, vec } = d;
  const [store, wide] = vec ? ['vec4<f16>', 'vec4f'] : ['f16', 'f32'];
  const decl = `@binding(${index}) var<storage, ${d.access}> ${name}: array<${store}>;`;
  const accessors =
    `fn ${name}_ld(i: u32) -> ${wide} { return ${wide}(${name}[i]); }` +
    (d.access === 'read_write' ? `\nfn ${name}_st(i: u32, v: ${wide}) { ${name}[i] = ${store}(v); }` : '');
  const at = code.indexOf(d.text);
  const before = code.slice(0, at);
  const after = rewriteAccesses(code.slice(at + d.text.length), name, `${what} binding ${index} '${name}'`);
  let out = `${before}${decl}\n${accessors}${after}`;
  if (!/\benable f16;/.test(out)) out = `enable f16;\n${out}`;
  return { code: out, name };
}

const COMPOUND = /^\s*([-+*/])=(?!=)/;
const ASSIGN = /^\s*=(?!=)/;

// Every `name[expr]` in `code`, as a read, a write or a compound assignment (see the header).
function rewriteAccesses(code: string, name: string, what: string): string {
  const re = new RegExp(`(?<![\\w.])${name}\\s*\\[`, 'g');
  let out = '';
  let last = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    if (/&\s*$/.test(code.slice(Math.max(0, m.index - 8), m.index))) {
      throw new Error(`${what}: a pointer to an element cannot be stored as fp16`);
    }
    const close = matchingBracket(code, m.index + m[0].length, what);
    const index = `u32(${rewriteAccesses(code.slice(m.index + m[0].length, close), name, what)})`;
    const rest = code.slice(close + 1);
    let replaced: string;
    let end = close + 1;
    const compound = COMPOUND.exec(rest);
    if (compound || ASSIGN.test(rest)) {
      const rhsStart = close + 1 + (compound ? compound[0].length : (ASSIGN.exec(rest) as RegExpExecArray)[0].length);
      const semi = statementEnd(code, rhsStart, what);
      const rhs = rewriteAccesses(code.slice(rhsStart, semi), name, what).trim();
      const value = compound ? `${name}_ld(${index}) ${compound[1]} (${rhs})` : rhs;
      replaced = `${name}_st(${index}, ${value})`;
      end = semi; // the ';' stays
    } else if (/^\s*\.\s*[xyzwrgba]+\s*([-+*/]?=)(?!=)/.test(rest)) {
      throw new Error(`${what}: a component write cannot be stored as fp16`);
    } else {
      replaced = `${name}_ld(${index})`;
    }
    out += code.slice(last, m.index) + replaced;
    last = end;
    re.lastIndex = end;
  }
  return out + code.slice(last);
}

function matchingBracket(code: string, from: number, what: string): number {
  let depth = 1;
  for (let i = from; i < code.length; i++) {
    if (code[i] === '[') depth++;
    else if (code[i] === ']' && --depth === 0) return i;
  }
  throw new Error(`${what}: unbalanced brackets`);
}

// The ';' that ends the statement starting at `from` (outside brackets and parentheses).
function statementEnd(code: string, from: number, what: string): number {
  let depth = 0;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ';' && depth === 0) return i;
  }
  throw new Error(`${what}: an assignment without ';'`);
}
