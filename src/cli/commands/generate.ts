// likeness generate [--concept c.safetensors] --prompt "a photo of S* on the beach" [--negative ""]
//                   [--steps 25] [--guidance 7.5] [--sampler dpmpp-2m] [--blend 0.25] [--seed 1]
//                   [--batch 1] [--pack dir] [--weights stored|f16|f32] --out out/
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { generate } from '../../pipeline/generate.ts';
import { encodePng } from '../../pipeline/image/png-encode.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { isSamplerName } from '../../pipeline/schedulers/index.ts';
import { importConcept } from '../../storage/concept-safetensors.ts';
import { parseArgs, UsageError, weightsOption } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';

export async function generateCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    concept: { type: 'string' },
    prompt: { type: 'string' },
    negative: { type: 'string' },
    steps: { type: 'number' },
    guidance: { type: 'number' },
    sampler: { type: 'string' },
    blend: { type: 'number' },
    seed: { type: 'number' },
    batch: { type: 'number' },
    pack: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.prompt !== 'string') throw new UsageError('generate needs --prompt "…"');
  if (typeof o.out !== 'string') throw new UsageError('generate needs --out <folder>');
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir), { weights: weightsOption(o.weights), deferImageEncoder: true });
  try {
    const d = rt.manifest.defaults;
    const sampler = typeof o.sampler === 'string' ? o.sampler : d.sampler;
    if (!isSamplerName(sampler)) throw new UsageError(`--sampler must be ddim, euler or dpmpp-2m, got ${sampler}`);
    const concept =
      typeof o.concept === 'string'
        ? importConcept(new Uint8Array(readFileSync(o.concept)), {
            hash: rt.hash,
            id: rt.manifest.name,
            tokenDim: rt.tokenDim,
            rank: rt.manifest.architecture.lora.rank,
            targets: rt.loraTargets,
          })
        : null;
    if (concept && !o.prompt.includes(concept.placeholder)) {
      log(`note: the prompt does not contain the concept's placeholder "${concept.placeholder}"`);
    }
    const settings = {
      prompt: o.prompt,
      negativePrompt: typeof o.negative === 'string' ? o.negative : d.negativePrompt,
      steps: typeof o.steps === 'number' ? o.steps : d.steps,
      guidance: typeof o.guidance === 'number' ? o.guidance : d.guidanceScale,
      sampler,
      blend: typeof o.blend === 'number' ? o.blend : concept?.blend ?? d.blend,
      seed: typeof o.seed === 'number' ? o.seed : 0,
      batch: typeof o.batch === 'number' ? o.batch : d.batchSize,
      concept,
    };
    const t0 = performance.now();
    const images = await generate(rt, settings, (e) => log(`image ${e.image + 1}: step ${e.step}/${e.steps}`));
    mkdirSync(o.out, { recursive: true });
    for (const [i, img] of images.entries()) {
      const text = {
        Software: 'Likeness',
        prompt: settings.prompt,
        negative_prompt: settings.negativePrompt,
        steps: String(settings.steps),
        guidance: String(settings.guidance),
        sampler: settings.sampler,
        blend: String(settings.blend),
        seed: String(img.seed),
        pack: `${rt.manifest.name} ${rt.hash}`,
        ...(concept ? { concept: concept.placeholder } : {}),
      };
      const path = join(o.out, `${String(i).padStart(3, '0')}-seed${img.seed}.png`);
      writeFileSync(path, await encodePng(img.rgba, img.width, img.height, (b) => deflateSync(b), text));
      log(`wrote ${path}`);
    }
    log(`${images.length} image(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    rt.dispose();
    engine.destroy();
  }
}
