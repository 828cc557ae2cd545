// Finds second copies of the one table of defaults (src/domain/defaults.ts) and of the one
// sampler list (src/domain/samplers.ts) in source text, for src/domain/defaults.test.ts.
// It reads code only — comments are blanked first — and flags:
//   sampler-list   the sampler names `ddim` … `dpmpp-2m` listed together (a union, an array,
//                  a label table, a help text enumerating them);
//   sampler-label  a sampler's display label as a string of its own ('DPM++ 2M', or the
//                  older 'DPM-Solver++ 2M'): a second label table;
//   default        a field named like a table field set to that field's table value
//                  (`blend: 0.25`, `guidanceScale: 7.5`, `steps: 12`, `x.guidance ?? 7.5`);
//   prose-default  a text that states the blend's or the guidance's default value
//                  ("--blend <α> … (default 0.25)").
// A field set to a value other than the table's (a benchmark's 2 steps, a LoRA's alpha 4) is
// not a copy of the table and is not flagged.
import { DEFAULTS } from '../src/domain/defaults.ts';
import { SAMPLERS, SAMPLER_LABELS } from '../src/domain/samplers.ts';

export type LiteralRule = 'sampler-list' | 'sampler-label' | 'default' | 'prose-default';

export interface LiteralFinding {
  rule: LiteralRule;
  line: number;
  text: string;
}

/**
 * The source with every comment replaced by spaces (newlines kept, so line numbers hold).
 * Strings, template literals (with nested `${…}`) and regular-expression literals are kept
 * and skipped over as units, so a `//` inside them does not start a comment.
 */
export function blankComments(src: string): string {
  const out = src.split('');
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  // Brace depths at which a template literal's `${` was opened.
  const templates: number[] = [];
  let depth = 0;
  let lastSignificant = '';
  let i = 0;
  const skipString = (quote: string) => {
    i++;
    while (i < src.length && src[i] !== quote && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
    i++;
  };
  // Inside a template literal's text: up to its end, or into a `${` expression.
  const skipTemplateText = () => {
    while (i < src.length) {
      if (src[i] === '\\') i += 2;
      else if (src[i] === '`') {
        i++;
        return;
      } else if (src[i] === '$' && src[i + 1] === '{') {
        templates.push(depth);
        depth++;
        i += 2;
        return;
      } else i++;
    }
  };
  while (i < src.length) {
    const c = src[i];
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && (lastSignificant === '' || '(,=:[!&|?{};+-*%<>~^'.includes(lastSignificant))) {
      // A regular-expression literal (a `/` where an operand is expected).
      let inClass = false;
      i++;
      while (i < src.length && src[i] !== '\n' && (inClass || src[i] !== '/')) {
        if (src[i] === '\\') i++;
        else if (src[i] === '[') inClass = true;
        else if (src[i] === ']') inClass = false;
        i++;
      }
      i++;
      while (/[a-z]/i.test(src[i] ?? '')) i++;
      lastSignificant = 'x';
    } else if (c === "'" || c === '"') {
      skipString(c);
      lastSignificant = 'x';
    } else if (c === '`') {
      i++;
      skipTemplateText();
      lastSignificant = 'x';
    } else {
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (templates.length && templates[templates.length - 1] === depth) {
          templates.pop();
          i++;
          skipTemplateText();
          lastSignificant = 'x';
          continue;
        }
      }
      if (!/\s/.test(c)) lastSignificant = /[\w$)\]]/.test(c) ? 'x' : c;
      i++;
    }
  }
  return out.join('');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

type Value = number | string;

/** Field names (as written in code) → the table values a default of that field would have. */
function tableFields(): Map<string, Value[]> {
  const g = DEFAULTS.generate;
  const p = DEFAULTS.personalize;
  const w = DEFAULTS.classWord;
  const blend = [g.generateBlend, p.tuningBlend];
  return new Map<string, Value[]>([
    ['steps', [g.steps, p.steps, w.steps]],
    ['tuningSteps', [p.steps, w.steps]],
    ['generateSteps', [g.steps]],
    ['samplingSteps', [g.steps]],
    ['guidance', [g.guidance]],
    ['guidanceScale', [g.guidance]],
    ['sampler', [g.sampler]],
    ['blend', blend],
    ['generateBlend', blend],
    ['tuningBlend', blend],
    // The dual path's α is also called alpha (models/unet/transformer.ts); LoRA alphas are ≥ 1.
    ['alpha', blend],
    ['learningRate', [p.learningRate, w.learningRate]],
    ['tuningLearningRate', [p.learningRate, w.learningRate]],
    ['lambdaWeights', [p.lambdaWeights, w.lambdaWeights]],
    ['lambdaEmbedding', [p.lambdaEmbedding, w.lambdaEmbedding]],
    ['nearestWords', [p.nearestWords]],
    ['nearestK', [p.nearestWords]],
    ['placeholder', [p.placeholder]],
  ]);
}

const LITERAL = String.raw`(-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?![\w.])|'[^'\n]*'|"[^"\n]*")`;

function literalValue(lit: string): Value {
  return lit.startsWith("'") || lit.startsWith('"') ? lit.slice(1, -1) : Number(lit);
}

/** Every place in `src` (a file's text) that copies the table of defaults or the sampler list. */
export function findDefaultLiterals(src: string, o: { samplers: boolean; defaults: boolean }): LiteralFinding[] {
  const code = blankComments(src);
  const found: LiteralFinding[] = [];
  const lineOf = (index: number) => code.slice(0, index).split('\n').length;
  const add = (rule: LiteralRule, index: number, text: string) =>
    found.push({ rule, line: lineOf(index), text: text.trim() });

  if (o.samplers) {
    const [first, last] = [SAMPLERS[0], SAMPLERS[SAMPLERS.length - 1]].map(escape);
    // Two sampler names within one statement (no `;` between them): a list, not a switch.
    const list = new RegExp(String.raw`\b${first}\b[^;]{0,160}?${last}|${last}[^;]{0,160}?\b${first}\b`, 'g');
    for (const m of code.matchAll(list)) add('sampler-list', m.index, m[0].split('\n')[0]);
    // A label as a whole string (a label table's entry), not a name mentioned in a sentence.
    const labels = [...Object.values(SAMPLER_LABELS), 'DPM-Solver++ 2M'];
    const label = new RegExp(String.raw`(['"\`])(?:${labels.map(escape).join('|')})\1`, 'g');
    for (const m of code.matchAll(label)) add('sampler-label', m.index, m[0]);
  }

  if (o.defaults) {
    const fields = tableFields();
    const names = [...fields.keys()].join('|');
    const assigned = new RegExp(String.raw`(?<![\w$])(${names})\??\s*[:=]\s*${LITERAL}`, 'g');
    const fallback = new RegExp(String.raw`(?<![\w$])(${names})\b[^;\n]{0,40}?\?\?\s*${LITERAL}`, 'g');
    for (const re of [assigned, fallback]) {
      for (const m of code.matchAll(re)) {
        if (fields.get(m[1])!.includes(literalValue(m[2]))) add('default', m.index, m[0]);
      }
    }
    const blend = escape(String(DEFAULTS.generate.generateBlend).replace(/^0\./, '.'));
    const prose = [
      new RegExp(String.raw`\b(?:blend|α)[^\n;]{0,40}?(?<![\d.])0?${blend}(?![\d])`, 'gi'),
      new RegExp(
        String.raw`\bguidance[^\n;]{0,40}?(?<![\d.])${escape(String(DEFAULTS.generate.guidance))}(?![\d])`,
        'gi',
      ),
    ];
    for (const re of prose) {
      for (const m of code.matchAll(re)) {
        if (!found.some((f) => f.line === lineOf(m.index))) add('prose-default', m.index, m[0]);
      }
    }
  }
  return found;
}
