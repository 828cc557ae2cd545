// Checks JSON read from files we do not control (a pack's manifest and the model configs it
// carries): each reader records a problem with its JSON path (`files[2].sha256: expected 64
// lowercase hex chars`) and returns undefined, so one pass reports every defect at once and
// the author fixes them in one round. The one validation approach for configs: each config
// has one check function, beside its type, built from these readers.
import { MANIFEST_LIMITS as L, type Range } from './limits.ts';

export interface JsonIssue {
  path: string;
  message: string;
}

export type Obj = Record<string, unknown>;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
export const key = (path: string, k: string) =>
  IDENT.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`;
export const idx = (path: string, i: number) => `${path}[${i}]`;

export function kind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return `${v}`;
  if (typeof v === 'string') return v.length > 40 ? `a string` : JSON.stringify(v);
  return `a ${typeof v}`;
}

/** Collects issues; the field readers return undefined where the value was bad or missing. */
export class Checker {
  readonly issues: JsonIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  object(v: unknown, path: string): Obj | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.add(path, `expected an object, got ${kind(v)}`);
      return undefined;
    }
    return v as Obj;
  }

  /** Flags fields outside `allowed` (our own objects are closed; typos should not pass). */
  closed(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.add(key(path, k), 'unknown field');
  }

  private present(o: Obj, k: string, path: string, optional: boolean): boolean {
    if (!Object.hasOwn(o, k) || o[k] === undefined) {
      if (!optional) this.add(key(path, k), 'required');
      return false;
    }
    return true;
  }

  str(
    o: Obj,
    k: string,
    path: string,
    opts: { optional?: boolean; oneOf?: readonly string[]; nonEmpty?: boolean } = {},
  ): string | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    const v = o[k];
    const p = key(path, k);
    if (typeof v !== 'string') return void this.add(p, `expected a string, got ${kind(v)}`);
    if (opts.oneOf && !opts.oneOf.includes(v))
      return void this.add(p, `expected one of ${opts.oneOf.map((s) => JSON.stringify(s)).join(', ')}, got ${kind(v)}`);
    if ((opts.nonEmpty ?? true) && v.trim() === '') return void this.add(p, 'must not be empty');
    return v;
  }

  num(o: Obj, k: string, path: string, opts: NumOpts = {}): number | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    return this.numValue(o[k], key(path, k), opts);
  }

  numValue(v: unknown, p: string, opts: NumOpts = {}): number | undefined {
    const what = opts.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v)) return void this.add(p, `expected ${what}, got ${kind(v)}`);
    if (opts.integer && !Number.isSafeInteger(v)) return void this.add(p, `expected ${what}, got ${v}`);
    if (opts.min !== undefined && v < opts.min) return void this.add(p, `expected ${what} ≥ ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) return void this.add(p, `expected ${what} ≤ ${opts.max}, got ${v}`);
    if (opts.above !== undefined && !(v > opts.above))
      return void this.add(p, `expected ${what} > ${opts.above}, got ${v}`);
    return v;
  }

  bool(o: Obj, k: string, path: string, optional = true): boolean | undefined {
    if (!this.present(o, k, path, optional)) return undefined;
    const v = o[k];
    if (typeof v !== 'boolean') return void this.add(key(path, k), `expected true or false, got ${kind(v)}`);
    return v;
  }

  array(o: Obj, k: string, path: string, optional = false): unknown[] | undefined {
    if (!this.present(o, k, path, optional)) return undefined;
    const v = o[k];
    if (!Array.isArray(v)) return void this.add(key(path, k), `expected an array, got ${kind(v)}`);
    return v;
  }

  /** A non-empty array of numbers meeting `opts`; reports each bad element by index. */
  numArray(
    o: Obj,
    k: string,
    path: string,
    opts: NumOpts & { optional?: boolean; nonEmpty?: boolean } = {},
  ): number[] | undefined {
    const a = this.array(o, k, path, opts.optional);
    if (!a) return undefined;
    const p = key(path, k);
    if ((opts.nonEmpty ?? true) && a.length === 0) return void this.add(p, 'must not be empty');
    const out = a.map((v, i) => this.numValue(v, idx(p, i), opts));
    return out.every((v) => v !== undefined) ? out : undefined;
  }

  /** diffusers' "int or per-block list" fields. Returns the per-block list. */
  perBlock(
    o: Obj,
    k: string,
    path: string,
    blocks: number | undefined,
    opts: NumOpts & { optional?: boolean },
  ): number[] | undefined {
    if (!this.present(o, k, path, !!opts.optional)) return undefined;
    const v = o[k];
    const p = key(path, k);
    if (Array.isArray(v)) {
      const list = this.numArray(o, k, path, opts);
      if (list && blocks !== undefined && list.length !== blocks) {
        this.add(p, `expected one entry per block (${blocks}), got ${list.length}`);
        return undefined;
      }
      return list;
    }
    const n = this.numValue(v, p, opts);
    return n === undefined || blocks === undefined ? undefined : new Array<number>(blocks).fill(n);
  }
}

export interface NumOpts {
  integer?: boolean;
  min?: number;
  max?: number;
  /** Strictly greater than. */
  above?: number;
  optional?: boolean;
}

export const NONNEG_INT: NumOpts = { integer: true, min: 0 };
/** A documented bound of limits.ts as reader options. */
export const R = (r: Range, optional = false): NumOpts => ({
  integer: r.integer,
  min: r.min,
  above: r.above,
  max: r.max,
  optional,
});

/** Runs one check on a value and throws `makeError(issues)` when it found any. */
export function checked<T>(check: (c: Checker) => T, makeError: (issues: JsonIssue[]) => Error): T {
  const c = new Checker();
  const out = check(c);
  if (c.issues.length) throw makeError(c.issues);
  return out;
}

/** A per-block list with at most the documented number of blocks. */
export function blockList(c: Checker, list: number[] | undefined, at: string): number[] | undefined {
  if (list && list.length > L.blocks.max) {
    c.add(at, `${list.length} blocks, more than ${L.blocks.max}`);
    return undefined;
  }
  return list;
}
