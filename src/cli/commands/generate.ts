// likeness generate [--concept c.safetensors] [--lora l.safetensors] [--embedding e.safetensors]
//                   [--trigger word] [--drop-text-encoder] [--attention-only] --prompt "a photo of S* on the beach" [--negative ""]
//                   [--steps 25] [--guidance 7.5] [--sampler dpmpp-2m] [--blend 0.25] [--seed 1]
//                   [--batch 1] [--rng philox|torch] [--pack dir] [--weights stored|f16|f32] --out out/
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Engine } from '../../engine/engine.ts';
import { loadPackFromFolder } from '../../packs/pack-node.ts';
import { generate } from '../../pipeline/generate.ts';
import { encodePng } from '../../image/png-encode.ts';
import { PackRuntime } from '../../pipeline/pack-runtime.ts';
import { isSamplerName } from '../../pipeline/schedulers/index.ts';
import { conceptFromForeign } from '../../pipeline/import-concept.ts';
import { readForeignFile } from '../../storage/concept-foreign.ts';
import { ConceptFileError, importConcept, type ConceptPackInfo } from '../../storage/concept-safetensors.ts';
import type { ConceptData } from '../../domain/types.ts';
import { parseArgs, UsageError, weightsOption } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';

export async function generateCommand(argv: string[], log: (s: string) => void): Promise<number> {
  const { options: o, positional } = parseArgs(argv, {
    concept: { type: 'string' },
    lora: { type: 'string' },
    embedding: { type: 'string' },
    trigger: { type: 'string' },
    'drop-text-encoder': { type: 'flag' },
    'attention-only': { type: 'flag' },
    prompt: { type: 'string' },
    negative: { type: 'string' },
    steps: { type: 'number' },
    guidance: { type: 'number' },
    sampler: { type: 'string' },
    blend: { type: 'number' },
    seed: { type: 'number' },
    batch: { type: 'number' },
    rng: { type: 'string' },
    pack: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
  });
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (typeof o.prompt !== 'string') throw new UsageError('generate needs --prompt "…"');
  if (typeof o.out !== 'string') throw new UsageError('generate needs --out <folder>');
  const rng = typeof o.rng === 'string' ? o.rng : 'philox';
  if (rng !== 'philox' && rng !== 'torch') throw new UsageError(`--rng must be philox or torch, got ${rng}`);
  const packDir = typeof o.pack === 'string' ? o.pack : ensureTinyPack(log);
  const engine = await Engine.create();
  log(`adapter: ${engine.info.name}`);
  const rt = await PackRuntime.open(engine, await loadPackFromFolder(packDir), { weights: weightsOption(o.weights), deferImageEncoder: true });
  try {
    const d = rt.manifest.defaults;
    const sampler = typeof o.sampler === 'string' ? o.sampler : d.sampler;
    if (!isSamplerName(sampler)) throw new UsageError(`--sampler must be ddim, euler or dpmpp-2m, got ${sampler}`);
    const packInfo: ConceptPackInfo = {
      hash: rt.hash,
      id: rt.manifest.name,
      tokenDim: rt.tokenDim,
      rank: rt.manifest.architecture.lora.rank,
      targets: rt.loraTargets,
      vocabulary: rt.tokenizer,
    };
    // A Likeness concept file, or other tools' LoRA / embedding files (also given as --concept).
    const foreign: string[] = [o.lora, o.embedding].filter((f): f is string => typeof f === 'string');
    let concept: ConceptData | null = null;
    if (typeof o.concept === 'string') {
      try {
        concept = importConcept(new Uint8Array(readFileSync(o.concept)), packInfo);
      } catch (e) {
        if (!(e instanceof ConceptFileError && e.code === 'not-a-concept')) throw e;
        foreign.unshift(o.concept);
      }
    }
    if (concept && foreign.length > 0) throw new UsageError('--lora/--embedding cannot be combined with a Likeness concept file');
    if (foreign.length > 0) {
      const reads = foreign.map((f) =>
        readForeignFile(new Uint8Array(readFileSync(f)), packInfo, {
          fileName: f,
          dropTextEncoder: o['drop-text-encoder'] === true,
          dropOtherLayers: o['attention-only'] === true,
        }),
      );
      for (const r of reads) {
        if (r.lora) log(`${r.fileName}: LoRA, ${r.lora.layout} names, rank ${r.lora.fileRank}, ${r.lora.matched} modules${r.lora.droppedTextEncoder ? ` (text-encoder part left out: ${r.lora.droppedTextEncoder} tensors)` : ''}${r.lora.droppedOtherLayers ? ` (other layers left out: ${r.lora.droppedOtherLayers} tensors)` : ''}`);
        if (r.embedding) log(`${r.fileName}: embedding (${r.embedding.layout}), ${r.embedding.count} vector(s)`);
      }
      concept = await conceptFromForeign(rt, reads, { placeholder: typeof o.trigger === 'string' ? o.trigger : undefined });
      log(`placeholder "${concept.placeholder}"${concept.hardTokenIds ? ` (${concept.hardTokenIds.length} tokens)` : ''}, blend ${concept.blend}`);
    } else if (typeof o.trigger === 'string') {
      throw new UsageError('--trigger names the placeholder of an imported LoRA or embedding (--lora, --embedding)');
    }
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
      rng: rng as 'philox' | 'torch',
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
        rng,
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
