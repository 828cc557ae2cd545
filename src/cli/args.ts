// A small, strict argument parser: --name value / --name=value / --flag, with every
// unknown option refused (a typo must not silently fall back to a default).
import { BadInputError } from '../domain/errors.ts';

export interface OptionSpec {
  /** 'string' takes a value; 'flag' does not. */
  type: 'string' | 'number' | 'flag';
  alias?: string;
}

export type ParsedArgs = { positional: string[]; options: Record<string, string | number | boolean> };

export class UsageError extends BadInputError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const positional: string[] = [];
  const options: ParsedArgs['options'] = {};
  const byAlias = new Map(Object.entries(spec).flatMap(([k, v]) => (v.alias ? [[v.alias, k] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const [rawName, inline] = a.startsWith('--') ? a.slice(2).split(/=(.*)/s, 2) : [byAlias.get(a.slice(1)) ?? a, undefined];
    const name = rawName;
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option ${a}`);
    if (s.type === 'flag') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(value)}`);
      options[name] = n;
    } else options[name] = value;
  }
  return { positional, options };
}

/** --weights: the GPU dtype of a pack's linear/conv weights (PackRuntimeOptions.weights). */
export function weightsOption(v: unknown): 'stored' | 'f16' | 'f32' | undefined {
  if (v === undefined) return undefined;
  if (v === 'stored' || v === 'f16' || v === 'f32') return v;
  throw new UsageError(`--weights must be stored, f16 or f32, got ${String(v)}`);
}
