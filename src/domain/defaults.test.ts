// One table of defaults and one sampler list (issue 13): every source file under src/ and
// bench/ (tests and test fixtures aside) must take its defaults from src/domain/defaults.ts
// and its sampler names from src/domain/samplers.ts, not restate them.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { blankComments, findDefaultLiterals, type LiteralFinding } from '../../test/default-literals.ts';
import { DEFAULTS, DEFAULT_SOURCES } from './defaults.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where each copy is allowed: the table itself and the sampler list itself. */
const TABLE = 'src/domain/defaults.ts';
const SAMPLER_LIST = 'src/domain/samplers.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(rel);
    const source = /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) && !/fixture/i.test(e.name);
    return source ? [rel] : [];
  });
}

function findings(): Map<string, LiteralFinding[]> {
  const out = new Map<string, LiteralFinding[]>();
  for (const file of [...sourceFiles('src'), ...sourceFiles('bench')]) {
    const hits = findDefaultLiterals(readFileSync(join(ROOT, file), 'utf8'), {
      samplers: file !== SAMPLER_LIST,
      defaults: file !== TABLE,
      fileName: file,
    });
    if (hits.length) out.set(relative(ROOT, join(ROOT, file)), hits);
  }
  return out;
}

describe('one table of defaults, one sampler list', () => {
  const all = findings();

  it('no source file outside the table restates a default or the sampler list', () => {
    const report = [...all].flatMap(([file, hits]) => hits.map((h) => `${file}:${h.line} ${h.rule}: ${h.text}`));
    expect(report, 'take these from DEFAULTS (src/domain/defaults.ts) or SAMPLERS (src/domain/samplers.ts)').toEqual(
      [],
    );
  });

  it('every default in the table says where its value comes from', () => {
    for (const [section, fields] of Object.entries(DEFAULTS)) {
      const sources = DEFAULT_SOURCES[section as keyof typeof DEFAULTS] as Record<string, string>;
      expect(Object.keys(sources).sort(), section).toEqual(Object.keys(fields).sort());
      for (const [k, why] of Object.entries(sources)) expect(why.length, `${section}.${k}`).toBeGreaterThan(10);
    }
  });
});

describe('the default-literal finder', () => {
  const find = (src: string) => findDefaultLiterals(src, { samplers: true, defaults: true }).map((f) => f.rule);

  it('flags a second sampler list, union or label table', () => {
    expect(find("export type S = 'ddim' | 'euler' | 'dpmpp-2m';")).toEqual(['sampler-list']);
    expect(find("const all = [\n  'dpmpp-2m',\n  'euler',\n  'ddim',\n];")).toEqual(['sampler-list']);
    expect(find("throw new Error('--sampler must be ddim, euler or dpmpp-2m');")).toEqual(['sampler-list']);
    expect(find("const label = 'DPM-Solver++ 2M';")).toEqual(['sampler-label']);
  });

  it('flags a blend, guidance or tuning default restated as a literal', () => {
    expect(find('const d = { blend: 0.25 };')).toEqual(['default']);
    expect(find('dual: { hardContext, alpha: .25 }')).toEqual(['default']);
    expect(find('guidance: d?.guidance ?? 7.5,')).toEqual(['default']);
    expect(find('const o = { tuningLearningRate: 0.002, lambdaWeights: 1e-2 };')).toEqual(['default', 'default']);
    expect(find("placeholder: 'S*',")).toEqual(['default']);
    expect(find("sampler: 'dpmpp-2m',")).toEqual(['default']);
    expect(find("'--blend <α>   Dual-path blend (default 0.25).'")).toEqual(['prose-default']);
  });

  it('leaves other values, switches and comments alone', () => {
    expect(
      find("switch (name) {\n  case 'ddim': return a;\n  case 'euler': return b;\n  case 'dpmpp-2m': return c;\n}"),
    ).toEqual([]);
    expect(find('const lora = { rank: 4, alpha: 4 };\nconst b = { steps: 2, blend: 1, guidance: 3 };')).toEqual([]);
    expect(find('// the sampler list: ddim, euler, dpmpp-2m; blend: 0.25\n/* guidance 7.5 */ const x = 1;')).toEqual(
      [],
    );
    expect(find('const url = "http://x/y"; const b = { blend: 0.5 };')).toEqual([]);
    expect(find('const r = /\\/\\//g; const s = 10 / 4;')).toEqual([]);
  });

  it('blanks comments but keeps strings, templates and line numbers', () => {
    const src = "const a = '// no'; // yes\nconst t = `${x /* c */} // kept`; /* gone\nstill */ const b = 1;";
    const out = blankComments(src);
    expect(out.split('\n').length).toBe(3);
    expect(out).toContain("'// no'");
    expect(out).not.toContain('yes');
    expect(out).toContain('// kept`');
    expect(out).not.toContain('c */');
    expect(out).not.toContain('gone');
    expect(out).toContain('const b = 1;');
  });
});
