// likeness eval --pack <dir> --concepts <folder of single photos> --prompts <file> [--steps 25]
//               [--tuning-steps 12] [--guidance x] [--sampler name] [--seed 0] [--token S*]
//               [--variants full,no-tuning,no-dual-path,no-hypernetwork] [--out report.md] [--json report.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { decodeImage } from '../../image/decode-node.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { EVAL_VARIANTS, evaluateConcepts, reportMarkdown, type EvalVariant } from '../../training/clip-eval.ts';
import { listImageFiles } from '../../training/training-data.ts';
import { parseArgs, UsageError } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';
import { EVAL_OPTIONS } from './eval-options.ts';

export async function evalCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, EVAL_OPTIONS);
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  const variants = (
    typeof o.variants === 'string' ? o.variants.split(',').map((s) => s.trim()) : [...EVAL_VARIANTS]
  ) as EvalVariant[];
  for (const v of variants)
    if (!(EVAL_VARIANTS as readonly string[]).includes(v))
      throw new UsageError(`--variants: unknown variant ${v} (${EVAL_VARIANTS.join(', ')})`);
  const prompts = readFileSync(o.prompts, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);

  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir));
  try {
    const d = rt.manifest.defaults;
    const sampler = o.sampler ?? d.sampler;
    const concepts = [];
    for (const file of listImageFiles(o.concepts))
      concepts.push({ id: basename(file), image: await decodeImage(new Uint8Array(readFileSync(file))) });
    const settings = {
      prompts,
      placeholder: typeof o.token === 'string' ? o.token : d.placeholder,
      tuningSteps: typeof o['tuning-steps'] === 'number' ? o['tuning-steps'] : d.tuningSteps,
      samplingSteps: typeof o.steps === 'number' ? o.steps : d.steps,
      guidance: typeof o.guidance === 'number' ? o.guidance : d.guidanceScale,
      sampler,
      seed: o.seed,
      variants,
    };
    log(
      `eval: ${concepts.length} concept(s) × ${prompts.length} prompt(s) × ${variants.length} variant(s), ${settings.samplingSteps} sampling steps`,
    );
    const t0 = performance.now();
    const report = await evaluateConcepts(rt, concepts, settings, (e) => {
      if (e.stage === 'concept') log(`${e.concept}: ${e.variant} …`);
      else
        log(
          `  prompt ${e.prompt}/${e.prompts}: image–image ${e.imageSimilarity.toFixed(4)}${e.textSimilarity === null ? '' : `, text–image ${e.textSimilarity.toFixed(4)}`}`,
        );
    });
    const md = reportMarkdown(report);
    log('');
    log(md);
    if (typeof o.out === 'string') writeFileSync(o.out, md);
    if (typeof o.json === 'string') writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
    log(
      `eval done in ${((performance.now() - t0) / 1000).toFixed(1)} s${typeof o.out === 'string' ? `; markdown in ${o.out}` : ''}${typeof o.json === 'string' ? `, JSON in ${o.json}` : ''}`,
    );
    return 0;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
