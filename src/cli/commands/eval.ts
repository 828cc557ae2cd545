// likeness eval --pack <dir> --concepts <folder of single photos> --prompts <file> [--steps 25]
//               [--tuning-steps 12] [--guidance x] [--sampler name] [--seed 0] [--token S*]
//               [--variants full,no-tuning,no-dual-path,no-hypernetwork] [--out report.md] [--json report.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { decodeImage } from '../../image/decode-node.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { isSamplerName } from '../../pipeline/schedulers/index.ts';
import { EVAL_VARIANTS, evaluateConcepts, reportMarkdown, type EvalVariant } from '../../training/clip-eval.ts';
import { listImageFiles } from '../../training/training-data.ts';
import { parseArgs, UsageError } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';

export async function evalCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    pack: { type: 'string' },
    concepts: { type: 'string' },
    prompts: { type: 'string' },
    steps: { type: 'number' },
    'tuning-steps': { type: 'number' },
    guidance: { type: 'number' },
    sampler: { type: 'string' },
    seed: { type: 'number' },
    token: { type: 'string' },
    variants: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'string' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.concepts !== 'string') throw new UsageError('eval needs --concepts <folder of single photos>');
  if (typeof o.prompts !== 'string') throw new UsageError('eval needs --prompts <file, one prompt per line with the placeholder>');
  const variants = (typeof o.variants === 'string' ? o.variants.split(',').map((s) => s.trim()) : [...EVAL_VARIANTS]) as EvalVariant[];
  for (const v of variants) if (!(EVAL_VARIANTS as readonly string[]).includes(v)) throw new UsageError(`--variants: unknown variant ${v} (${EVAL_VARIANTS.join(', ')})`);
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
    const sampler = typeof o.sampler === 'string' ? o.sampler : d.sampler;
    if (!isSamplerName(sampler)) throw new UsageError(`--sampler must be ddim, euler or dpmpp-2m, got ${sampler}`);
    const concepts = [];
    for (const file of listImageFiles(o.concepts)) concepts.push({ id: basename(file), image: await decodeImage(new Uint8Array(readFileSync(file))) });
    const settings = {
      prompts,
      placeholder: typeof o.token === 'string' ? o.token : d.placeholder,
      tuningSteps: typeof o['tuning-steps'] === 'number' ? o['tuning-steps'] : d.tuningSteps,
      samplingSteps: typeof o.steps === 'number' ? o.steps : d.steps,
      guidance: typeof o.guidance === 'number' ? o.guidance : d.guidanceScale,
      sampler,
      seed: typeof o.seed === 'number' ? o.seed : 0,
      variants,
    };
    log(`eval: ${concepts.length} concept(s) × ${prompts.length} prompt(s) × ${variants.length} variant(s), ${settings.samplingSteps} sampling steps`);
    const t0 = performance.now();
    const report = await evaluateConcepts(rt, concepts, settings, (e) => {
      if (e.stage === 'concept') log(`${e.concept}: ${e.variant} …`);
      else log(`  prompt ${e.prompt}/${e.prompts}: image–image ${e.imageSimilarity.toFixed(4)}${e.textSimilarity === null ? '' : `, text–image ${e.textSimilarity.toFixed(4)}`}`);
    });
    const md = reportMarkdown(report);
    log('');
    log(md);
    if (typeof o.out === 'string') writeFileSync(o.out, md);
    if (typeof o.json === 'string') writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
    log(`eval done in ${((performance.now() - t0) / 1000).toFixed(1)} s${typeof o.out === 'string' ? `; markdown in ${o.out}` : ''}${typeof o.json === 'string' ? `, JSON in ${o.json}` : ''}`);
    return 0;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
