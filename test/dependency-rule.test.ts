// The dependency rule of docs/architecture.md is only as good as eslint.config.js: these run
// the real config on small probe files (never written to disk) and check that upward imports
// fail with a message naming the rule, and that allowed ones pass. Type-aware rules are off
// here: the probes are not part of the TypeScript program.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// A plain-JS module outside the TypeScript program, hence the URL import.
const { LAYERS } = (await import(new URL('../eslint.config.js', import.meta.url).href)) as { LAYERS: string[][] };
const eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked });

/** The rule messages ESLint reports for `code` as if it were the file at `path`. */
async function problems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${path}` });
  return result.messages
    .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
    .map((m) => m.message);
}

describe('the dependency rule (eslint.config.js)', () => {
  it('refuses an import from a higher layer, naming the rule', async () => {
    const found = await problems('src/packs/probe.ts', "export { generate } from '../pipeline/generate.ts';\n");
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/src\/packs may not import src\/pipeline \(layer 2 → 3\).*docs\/architecture\.md/);
    expect(
      await problems('src/engine/probe.ts', "import { x } from '../kernels/matmul/matmul.ts';\nexport { x };\n"),
    ).toHaveLength(1);
    expect(
      await problems('src/pipeline/schedulers/probe.ts', "import { x } from '../generate.ts';\nexport { x };\n"),
    ).toHaveLength(1);
  });

  it('allows lower layers and the listed same-layer peers', async () => {
    const code =
      "import { a } from '../packs/manifest.ts';\nimport { b } from '../storage/zip.ts';\nimport { c } from '../domain/types.ts';\nexport { a, b, c };\n";
    expect(await problems('src/pipeline/probe.ts', code)).toEqual([]);
    expect(
      await problems('src/packs/probe.ts', "import { s } from '../pipeline/schedulers/index.ts';\nexport { s };\n"),
    ).toEqual([]);
  });

  it('lets only src/onnx/ort.ts import onnxruntime-web, statically or dynamically', async () => {
    const code = "export const load = () => import('onnxruntime-web/webgpu');\n";
    expect(await problems('src/models/probe.ts', code)).toEqual([expect.stringMatching(/only src\/onnx\/ort\.ts/)]);
    expect(await problems('test/probe.ts', "import * as ort from 'onnxruntime-web';\nexport { ort };\n")).toHaveLength(
      1,
    );
    expect(
      await problems(
        'src/onnx/ort.ts',
        `import type * as Ort from 'onnxruntime-web';\nexport type T = Ort.Tensor;\n${code}`,
      ),
    ).toEqual([]);
  });

  it('keeps the UI to the worker client and GPU-free code', async () => {
    const allowed = [
      "import { workerApi } from '../worker/client.ts';",
      "import type { GpuReport } from '../worker/api.ts';",
      "import type { Session } from '../session/session.ts';",
      "import { pickedFolderKind } from '../packs/pack-io-browser.ts';",
      "import { ConceptLibrary } from '../storage/library-db.ts';",
      "import { pngWithText } from '../session/generation-png.ts';",
      'export { workerApi, pickedFolderKind, ConceptLibrary, pngWithText };',
      'export type { GpuReport, Session };',
    ].join('\n');
    expect(await problems('src/ui/probe.ts', allowed)).toEqual([]);
    for (const line of [
      "import { jobs } from '../worker/jobs.ts';",
      "import { Session } from '../session/session.ts';",
      "import { Engine } from '../engine/engine.ts';",
      "import { generate } from '../pipeline/generate.ts';",
      "import { manifest } from '../packs/manifest.ts';",
    ]) {
      expect(await problems('src/ui/probe.ts', `${line}\nexport {};\n`), line).toHaveLength(1);
    }
  });

  it('keeps the session modules the UI may use free of GPU code', async () => {
    const code = "import { generate } from '../pipeline/generate.ts';\nexport { generate };\n";
    expect(await problems('src/session/probe.ts', code)).toEqual([expect.stringMatching(/other than session\.ts/)]);
    expect(await problems('src/session/session.ts', code)).toEqual([]);
    expect(
      await problems('src/session/probe.ts', "import { w } from '../worker/client.ts';\nexport { w };\n"),
    ).toHaveLength(1);
  });

  it('keeps test code out of production code, and lets tests use test/', async () => {
    const code = "import { rng } from '../../test/random.ts';\nexport { rng };\n";
    expect(await problems('src/storage/probe.ts', code)).toEqual([expect.stringMatching(/may not import test code/)]);
    expect(await problems('src/storage/probe.test.ts', code)).toEqual([]);
    expect(
      await problems(
        'src/packs/probe.ts',
        "import { makeTestPack } from './test-pack.ts';\nexport { makeTestPack };\n",
      ),
    ).toHaveLength(1);
  });

  it('has every folder of src in its layer table', () => {
    const listed = new Set(LAYERS.flat().map((f) => f.split('/')[0]));
    const folders = readdirSync(new URL('../src/', import.meta.url), { withFileTypes: true }).filter((d) =>
      d.isDirectory(),
    );
    expect(folders.map((d) => d.name).filter((name) => !listed.has(name))).toEqual([]);
  });
});
