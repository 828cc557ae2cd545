// The CLI's argument parser: each command declares its options once — type, default (taken
// from DEFAULTS, never restated), value name and help text — and gets back typed values; the
// same declarations print `likeness --help`. --name value, --name=value and --flag; every
// unknown option is refused (a typo must not silently fall back to a default).
import { BadInputError } from '../domain/errors.ts';

interface Common {
  /** One line (or a few sentences) for --help; wrapped to the help's width. */
  help?: string;
  /** Single-letter alias, without the dash. */
  alias?: string;
}

export type OptionSpec =
  | (Common & { type: 'flag' })
  | (Common & {
      type: 'string';
      /** The value's name in --help, e.g. '<dir>'. */
      value?: string;
      default?: string;
      /** The only values allowed. */
      choices?: readonly string[];
      /** What --help says the default is when it is not a constant (e.g. "the pack's"). */
      defaultHelp?: string;
      required?: true;
    })
  | (Common & {
      type: 'number' | 'integer';
      value?: string;
      default?: number;
      min?: number;
      max?: number;
      defaultHelp?: string;
      required?: true;
    });

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

type ValueOf<S> = S extends { type: 'flag' }
  ? boolean
  : S extends { type: 'number' | 'integer' }
    ? number
    : S extends { choices: readonly (infer C)[] }
      ? C
      : string;

type AlwaysSet<S> = S extends { type: 'flag' }
  ? true
  : S extends { default: unknown }
    ? true
    : S extends { required: true }
      ? true
      : false;

/** Each option's value: always there for flags, options with a default and required ones. */
export type ParsedOptions<T extends OptionSpecs> = {
  -readonly [K in keyof T]: AlwaysSet<T[K]> extends true ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

export interface ParsedArgs<T extends OptionSpecs> {
  positional: string[];
  options: ParsedOptions<T>;
}

export class UsageError extends BadInputError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function convert(name: string, s: Exclude<OptionSpec, { type: 'flag' }>, raw: string): string | number {
  if (s.type === 'string') {
    if (s.choices && !s.choices.includes(raw)) {
      throw new UsageError(`--${name} must be one of ${s.choices.join(', ')}, got ${JSON.stringify(raw)}`);
    }
    return raw;
  }
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  if (s.type === 'integer' && !Number.isInteger(n))
    throw new UsageError(`--${name} must be a whole number, got ${raw}`);
  if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
    throw new UsageError(`--${name} must be from ${s.min ?? '-∞'} to ${s.max ?? '∞'}, got ${raw}`);
  }
  return n;
}

/** Parses `argv` against `specs`; values are typed by the declarations. */
export function parseArgs<const T extends OptionSpecs>(argv: readonly string[], specs: T): ParsedArgs<T> {
  const positional: string[] = [];
  const options: Record<string, string | number | boolean> = {};
  const byAlias = new Map(Object.entries(specs).flatMap(([k, v]) => (v.alias ? [[v.alias, k] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.startsWith('--')
      ? a.slice(2).split(/=(.*)/s, 2)
      : [byAlias.get(a.slice(1)) ?? a, undefined];
    const s = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!s) throw new UsageError(`unknown option ${a}${suggest(name, Object.keys(specs))}`);
    if (name in options) throw new UsageError(`--${name} is given twice`);
    if (s.type === 'flag') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value${s.value ? ` ${s.value}` : ''}`);
    options[name] = convert(name, s, value);
  }
  for (const [name, s] of Object.entries(specs)) {
    if (name in options) continue;
    if (s.type === 'flag') options[name] = false;
    else if (s.default !== undefined) options[name] = s.default;
    else if (s.required) throw new UsageError(`needs --${name}${s.value ? ` ${s.value}` : ''}`);
  }
  return { positional, options: options as ParsedOptions<T> };
}

/** ", did you mean --x?" for a near miss (one edit, or a prefix). */
function suggest(name: string, known: readonly string[]): string {
  const near = known.find((k) => k.startsWith(name) || name.startsWith(k) || editDistance(k, name) <= 2);
  return near ? `; did you mean --${near}?` : '';
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

const HELP_COLUMN = 26;
const HELP_WIDTH = 96;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The --help lines for these options, in declaration order; options without help are left out. */
export function optionsHelp(specs: OptionSpecs): string {
  const out: string[] = [];
  for (const [name, s] of Object.entries(specs)) {
    if (!s.help) continue;
    const head = `  --${name}${s.type === 'flag' ? '' : ` ${s.value ?? (s.type === 'string' ? '<text>' : '<n>')}`}`;
    let text = s.help;
    if (s.type !== 'flag') {
      if (s.type === 'string' && s.choices && !text.includes(s.choices[0])) text += ` One of ${s.choices.join(', ')}.`;
      const d = s.defaultHelp ?? (s.default !== undefined ? String(s.default) : undefined);
      if (d !== undefined) text += ` (default: ${d})`;
    }
    const body = wrap(text, HELP_WIDTH - HELP_COLUMN);
    if (head.length < HELP_COLUMN - 1) out.push(head.padEnd(HELP_COLUMN) + (body.shift() ?? ''));
    else out.push(head);
    for (const l of body) out.push(' '.repeat(HELP_COLUMN) + l);
  }
  return `${out.join('\n')}\n`;
}

/** --weights: the GPU dtype of a pack's linear/conv weights (PackRuntimeOptions.weights). */
export const WEIGHTS_CHOICES = ['stored', 'f16', 'f32'] as const;
