// likeness generate --prompt "a photo of S* on the beach" --out out/ [options]: images through
// the session core (session/session.ts), saved as the PNGs the app saves (session/generation-png.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ConceptData } from '../../domain/types.ts';
import { generationPng, generationRecord } from '../../session/generation-png.ts';
import { ConceptFileError } from '../../storage/concept-safetensors.ts';
import { parseArgs, UsageError } from '../args.ts';
import { ensureTinyPack } from '../defaults.ts';
import { openCliSession } from '../open-session.ts';
import { GENERATE_OPTIONS } from './generate-options.ts';
import type { CommandEnv } from './personalize.ts';

export async function generateCommand(argv: string[], log: (s: string) => void, env: CommandEnv = {}): Promise<number> {
  const { options: o, positional } = parseArgs(argv, GENERATE_OPTIONS);
  if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
  const now = env.now ?? Date.now;
  const packDir = o.pack ?? ensureTinyPack(log);
  const { session, rt, close } = await openCliSession(packDir, { weights: o.weights, deferImageEncoder: true }, log);
  try {
    // A Likeness concept file, or other tools' LoRA / embedding files (also given as --concept).
    const foreign: string[] = [o.lora, o.embedding].filter((f): f is string => typeof f === 'string');
    let concept: ConceptData | null = null;
    let conceptName = '';
    if (o.concept !== undefined) {
      try {
        concept = await session.openConceptFile(new Uint8Array(readFileSync(o.concept)));
        conceptName = basename(o.concept).replace(/\.safetensors$/i, '');
      } catch (e) {
        if (!(e instanceof ConceptFileError && e.code === 'not-a-concept')) throw e;
        foreign.unshift(o.concept);
      }
    }
    if (concept && foreign.length > 0)
      throw new UsageError('--lora/--embedding cannot be combined with a Likeness concept file');
    if (foreign.length > 0) {
      const imported = await session.importForeign({
        files: foreign.map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(f)) })),
        placeholder: o.trigger,
        dropTextEncoder: o['drop-text-encoder'],
        dropOtherLayers: o['attention-only'],
      });
      for (const r of imported.reads) {
        if (r.lora)
          log(
            `${r.fileName}: LoRA, ${r.lora.layout} names, rank ${r.lora.fileRank}, ${r.lora.matched} modules${r.lora.droppedTextEncoder ? ` (text-encoder part left out: ${r.lora.droppedTextEncoder} tensors)` : ''}${r.lora.droppedOtherLayers ? ` (other layers left out: ${r.lora.droppedOtherLayers} tensors)` : ''}`,
          );
        if (r.embedding) log(`${r.fileName}: embedding (${r.embedding.layout}), ${r.embedding.count} vector(s)`);
      }
      concept = imported.concept;
      conceptName = basename(foreign[0]).replace(/\.safetensors$/i, '');
      log(
        `placeholder "${concept.placeholder}"${concept.hardTokenIds ? ` (${concept.hardTokenIds.length} tokens)` : ''}, blend ${concept.blend}`,
      );
    } else if (o.trigger !== undefined) {
      throw new UsageError('--trigger names the placeholder of an imported LoRA or embedding (--lora, --embedding)');
    }
    if (concept && !o.prompt.includes(concept.placeholder)) {
      log(`note: the prompt does not contain the concept's placeholder "${concept.placeholder}"`);
    }
    const t0 = performance.now();
    const { images, settings } = await session.generate(
      {
        prompt: o.prompt,
        negativePrompt: o.negative,
        steps: o.steps,
        guidance: o.guidance,
        sampler: o.sampler,
        blend: o.blend,
        seed: o.seed,
        batch: o.batch,
        concept,
        rng: o.rng,
      },
      { onProgress: (e) => log(`image ${e.image + 1}: step ${e.step}/${e.steps}`) },
    );
    mkdirSync(o.out, { recursive: true });
    const context = {
      packId: rt.manifest.name,
      // Keys in the order the app's gallery writes them; a file has no library id.
      concept: concept ? { id: null, name: conceptName, placeholder: concept.placeholder } : null,
      createdAt: now(),
    };
    for (const [i, img] of images.entries()) {
      const path = join(o.out, `${String(i).padStart(3, '0')}-seed${img.seed}.png`);
      writeFileSync(path, await generationPng(img, generationRecord(settings, img, context)));
      log(`wrote ${path}`);
    }
    log(`${images.length} image(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    close();
  }
}
