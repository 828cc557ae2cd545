// Issue 13's acceptance test: the same request through the CLI (in-process, files on disk)
// and through the worker API (createWorkerApi on a Dawn engine, as the app's worker runs it)
// gives byte-identical concept files and byte-identical PNGs, metadata included. Both shells
// run the session core (src/session/); this checks nothing is resolved or encoded twice.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateCommand } from '../src/cli/commands/generate.ts';
import { personalizeCommand } from '../src/cli/commands/personalize.ts';
import { Engine } from '../src/engine/engine.ts';
import { decodeImage } from '../src/image/decode-node.ts';
import { readPngText } from '../src/image/png-text.ts';
import { MemoryPackCache } from '../src/packs/pack-cache.ts';
import { exportConceptFiles } from '../src/session/concept-files.ts';
import { generationPng, generationRecord } from '../src/session/generation-png.ts';
import { createWorkerApi } from '../src/worker/worker-api.ts';
import type { GenerateRequest } from '../src/domain/types.ts';
import { DEFAULTS } from '../src/domain/defaults.ts';
import { PHOTOS, tinyPackDir } from './tiny-pack.ts';

/** A picked folder as the app's file input gives it. */
function folder(dir: string): File[] {
  const out: File[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const f = new File([readFileSync(full)], name);
        Object.defineProperty(f, 'webkitRelativePath', { value: `tiny/${relative(dir, full).split('\\').join('/')}` });
        out.push(f);
      }
    }
  };
  walk(dir);
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'likeness-shells-'));
const engines: Engine[] = [];
const api = createWorkerApi({
  createEngine: async () => {
    const e = await Engine.create();
    engines.push(e);
    return e;
  },
  openCache: async () => ({ cache: new MemoryPackCache(), kind: 'memory', note: 'memory in tests' }),
  decodeImage: (bytes) => decodeImage(bytes),
});
afterAll(() => {
  api.host.dropEngine();
  for (const e of engines) if (!e.isLost) e.destroy();
  rmSync(work, { recursive: true, force: true });
});

// One request, small enough for llvmpipe: the tiny pack, 2 tuning steps, 2 sampler steps.
const PHOTO = join(PHOTOS, 'chelsea.png');
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const TUNING = { placeholder: 'S*', steps: 2, seed: 5 };
const SAMPLING = { prompt: 'a photo of S* on the beach', steps: 2, sampler: 'ddim', seed: 3 } as const;
const CONCEPT_NAME = 'chelsea';

describe('the CLI and the worker run the same session', () => {
  it('give byte-identical concept files and PNGs for the same request', async () => {
    const pack = tinyPackDir();
    const env = { now: () => NOW };
    const quiet = () => {};

    // The CLI, in-process.
    const cliConcept = join(work, `${CONCEPT_NAME}.safetensors`);
    const p = ['--pack', pack, '--image', PHOTO, '--out', cliConcept, '--token', TUNING.placeholder];
    p.push('--steps', String(TUNING.steps), '--seed', String(TUNING.seed));
    expect(await personalizeCommand(p, quiet, env)).toBe(0);
    const cliOut = join(work, 'images');
    const g = ['--pack', pack, '--concept', cliConcept, '--prompt', SAMPLING.prompt, '--out', cliOut];
    g.push('--steps', String(SAMPLING.steps), '--sampler', SAMPLING.sampler, '--seed', String(SAMPLING.seed));
    expect(await generateCommand(g, quiet, env)).toBe(0);
    const cliPngs = readdirSync(cliOut).map((f) => new Uint8Array(readFileSync(join(cliOut, f))));
    expect(cliPngs).toHaveLength(1);

    // The worker, as the app drives it: everything the UI's forms fill in from the pack summary.
    const summary = await api.loadPack('load', { kind: 'files', files: folder(pack) }, quiet);
    const concept = await api.personalize(
      'tune',
      { image: new Uint8Array(readFileSync(PHOTO)), mime: 'image/png', crop: null, ...TUNING },
      quiet,
    );
    const [workerConcept] = exportConceptFiles(concept, { format: 'likeness', name: CONCEPT_NAME, createdAt: NOW });
    expect(Buffer.from(workerConcept.bytes).equals(readFileSync(cliConcept))).toBe(true);

    const request: GenerateRequest = {
      ...summary.defaults,
      ...SAMPLING,
      negativePrompt: '',
      blend: concept.blend,
      concept,
      runtime: 'engine',
    };
    const [image] = await api.generate('gen', request, quiet);
    // The record as the app's gallery builds it (ui/store/gallery-slice.ts), with the same function.
    const record = generationRecord({ ...request, rng: request.rng ?? DEFAULTS.generate.rng }, image, {
      packId: summary.id,
      concept: { id: null, name: CONCEPT_NAME, placeholder: concept.placeholder },
      createdAt: NOW,
    });
    const workerPng = await generationPng(image, record);
    expect(readPngText(cliPngs[0]).map((e) => e.keyword)).toEqual(['parameters', 'Software', 'likeness']);
    expect(JSON.parse(readPngText(cliPngs[0])[2].text)).toEqual(record);
    expect(Buffer.from(workerPng).equals(Buffer.from(cliPngs[0]))).toBe(true);
  });
});
