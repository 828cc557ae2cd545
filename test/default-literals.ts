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
import ts from 'typescript';
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
 * TypeScript's parser finds the comments, so a `//` inside a string, a template literal, a
 * regular expression or JSX text is left alone.
 */
export function blankComments(src: string, fileName = 'source.tsx'): string {
  const kind = fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const file = ts.createSourceFile(fileName, src, ts.ScriptTarget.Latest, true, kind);
  const out = src.split('');
  const blank = (pos: number, end: number) => {
    for (let k = pos; k < end; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  const visit = (node: ts.Node) => {
    // JSX text is not trivia: scanning it for comments would misread a literal `//`.
    if (node.kind !== ts.SyntaxKind.JsxText) {
      ts.forEachLeadingCommentRange(src, node.getFullStart(), blank);
      ts.forEachTrailingCommentRange(src, node.getEnd(), blank);
    }
    for (const child of node.getChildren(file)) visit(child);
  };
  visit(file);
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
export function findDefaultLiterals(
  src: string,
  o: { samplers: boolean; defaults: boolean; fileName?: string },
): LiteralFinding[] {
  const code = blankComments(src, o.fileName);
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
