// The CLI's option declarations: typed values, refusals that name the option, and --help
// generated from the same declarations (so it lists every option and the current defaults).
import { describe, expect, it, vi } from 'vitest';
import { DEFAULTS } from '../domain/defaults.ts';
import { SAMPLERS } from '../domain/samplers.ts';
import { optionsHelp, parseArgs, UsageError } from './args.ts';
import { EVAL_OPTIONS } from './commands/eval-options.ts';
import { GENERATE_OPTIONS } from './commands/generate-options.ts';
import { PACK_OPTIONS } from './commands/pack-options.ts';
import { PERSONALIZE_OPTIONS } from './commands/personalize-options.ts';
import { HELP, main } from './main.ts';

const specs = {
  out: { type: 'string', required: true, help: 'Where.' },
  steps: { type: 'integer', min: 1, max: 100, help: 'Steps.' },
  lr: { type: 'number', help: 'Rate.' },
  sampler: { type: 'string', choices: SAMPLERS, help: 'Sampler.' },
  format: { type: 'string', choices: ['a', 'b'], default: 'a', help: 'Format.' },
  quiet: { type: 'flag', alias: 'q', help: 'Quiet.' },
} as const;

describe('parseArgs', () => {
  it('returns typed values, defaults and positionals', () => {
    const { options, positional } = parseArgs(
      ['--out', 'x', '--steps=12', '--lr', '2e-3', '--sampler', 'ddim', '-q', 'extra'],
      specs,
    );
    expect(options).toEqual({ out: 'x', steps: 12, lr: 0.002, sampler: 'ddim', format: 'a', quiet: true });
    expect(positional).toEqual(['extra']);
    const bare = parseArgs(['--out', 'y'], specs).options;
    expect(bare).toEqual({ out: 'y', format: 'a', quiet: false });
    // The types follow the declarations (a compile-time check as much as a runtime one).
    const steps: number | undefined = bare.steps;
    const out: string = bare.out;
    expect([steps, out]).toEqual([undefined, 'y']);
  });

  it('refuses what is not declared, naming the option and a near miss', () => {
    expect(() => parseArgs(['--out', 'x', '--stpes', '3'], specs)).toThrow(UsageError);
    expect(() => parseArgs(['--out', 'x', '--stpes', '3'], specs)).toThrow(
      /unknown option --stpes; did you mean --steps\?/,
    );
    expect(() => parseArgs(['--out', 'x', '--zzz'], specs)).toThrow(/^unknown option --zzz$/);
    expect(() => parseArgs(['--out', 'x', '-z'], specs)).toThrow(/unknown option -z/);
  });

  it('refuses bad values with what was given', () => {
    expect(() => parseArgs(['--out', 'x', '--steps', 'many'], specs)).toThrow('--steps must be a number, got "many"');
    expect(() => parseArgs(['--out', 'x', '--steps', '2.5'], specs)).toThrow('--steps must be a whole number, got 2.5');
    expect(() => parseArgs(['--out', 'x', '--steps', '0'], specs)).toThrow('--steps must be from 1 to 100, got 0');
    expect(() => parseArgs(['--out', 'x', '--lr', ''], specs)).toThrow('--lr must be a number');
    expect(() => parseArgs(['--out', 'x', '--sampler', 'plms'], specs)).toThrow(
      `--sampler must be one of ${SAMPLERS.join(', ')}, got "plms"`,
    );
    expect(() => parseArgs(['--out', 'x', '--quiet=yes'], specs)).toThrow('--quiet takes no value');
    expect(() => parseArgs(['--out'], specs)).toThrow('--out needs a value');
    expect(() => parseArgs(['--out', 'x', '--out', 'y'], specs)).toThrow('--out is given twice');
    expect(() => parseArgs([], specs)).toThrow('needs --out');
  });

  it('declares the commands’ options with their types', () => {
    const p = parseArgs(
      ['--image', 'a.png', '--out', 'c.safetensors', '--lr', '1e-3', '--kohya'],
      PERSONALIZE_OPTIONS,
    ).options;
    expect(p).toMatchObject({ image: 'a.png', lr: 1e-3, kohya: true, format: 'likeness', checkpointing: false });
    // Session-resolved defaults stay undefined here: the session resolves them, once.
    expect(p.steps).toBeUndefined();
    const g = parseArgs(['--prompt', 'p', '--out', 'o', '--rng', 'torch'], GENERATE_OPTIONS).options;
    expect(g).toMatchObject({ prompt: 'p', out: 'o', rng: 'torch' });
    expect(g.seed).toBeUndefined();
    expect(() => parseArgs(['--prompt', 'p', '--out', 'o', '--rng', 'mt'], GENERATE_OPTIONS)).toThrow(
      /--rng must be one of philox, torch/,
    );
    expect(() => parseArgs(['--image', 'a.png'], PERSONALIZE_OPTIONS)).toThrow(/needs --out/);
  });
});

describe('--help', () => {
  it('lists every declared option of personalize, generate, pack and eval, with the current defaults', () => {
    for (const name of [PERSONALIZE_OPTIONS, GENERATE_OPTIONS, PACK_OPTIONS, EVAL_OPTIONS].flatMap((o) =>
      Object.keys(o),
    )) {
      expect(HELP).toContain(`--${name}`);
    }
    const generate = optionsHelp(GENERATE_OPTIONS);
    expect(generate).toContain(`(default: ${DEFAULTS.generate.seed})`);
    expect(generate).toMatch(
      new RegExp(`--steps <n>\\s+Sampling steps\\. \\(default: the pack's, ${DEFAULTS.generate.steps}\\)`),
    );
    expect(optionsHelp(PERSONALIZE_OPTIONS)).toContain(`(default: ${DEFAULTS.personalize.seed})`);
  });
  it('wraps long help under its column', () => {
    const text = optionsHelp({ x: { type: 'flag', help: 'word '.repeat(40) } });
    for (const line of text.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(96);
    expect(text.split('\n')[1]).toMatch(/^ {26}word/);
  });
});

describe('likeness <command> with a bad option', () => {
  it('exits 2 with the option named, before any GPU or pack work', async () => {
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    try {
      expect(await main(['generate', '--prompt', 'p', '--out', 'o', '--guidence', '5'])).toBe(2);
      expect(await main(['personalize', '--image', 'a.png', '--out', 'c', '--format', 'zip'])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(err[0]).toBe(
      'likeness generate: unknown option --guidence; did you mean --guidance?\n(see likeness --help)\n',
    );
    expect(err[1]).toMatch(/^likeness personalize: --format must be one of likeness, diffusers, a1111, got "zip"/);
  });
});
