import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------
// The dependency rule of docs/architecture.md, enforced. Layers, bottom to top:
//   0 domain
//   1 engine, kernels, image, pipeline/schedulers
//   2 models, onnx, packs
//   3 pipeline, training, storage
//   4 session
//   5 worker, cli, ui, bench, sw (and src/main.tsx, the app's entry)
// A folder may import every folder of a lower layer and, in its own layer, only the peers named
// in PEERS; never a higher layer. The UI has a narrower list of its own (UI below). Imports are
// matched on the specifier as written: every import in this repository is relative with an
// explicit extension, so "../pipeline/x.ts" from src/packs names the pipeline folder.
// ---------------------------------------------------------------------------------------------
export const LAYERS = [
  ['domain'],
  ['engine', 'kernels', 'image', 'pipeline/schedulers'],
  ['models', 'onnx', 'packs'],
  ['pipeline', 'training', 'storage'],
  ['session'],
  ['worker', 'cli', 'ui', 'bench', 'sw'],
];
/** Same-layer imports that are allowed; any other same-layer import is not. */
const PEERS = {
  kernels: ['engine'], // kernels are built on the engine's tensors and dispatch
  models: ['packs'], // weights are read with packs/safetensors.ts
  onnx: ['models', 'packs'], // the tracer runs the models; graphs point into the pack's files
  packs: ['models'], // the builder checks and initialises weights with the model code
  pipeline: ['storage'], // importing a concept file parses it with storage's strict reader
  training: ['pipeline', 'storage'], // training reuses the runtime, personalize and generate
  cli: ['bench'], // `likeness bench` runs the benchmarks
  bench: ['cli'], // where the CLI keeps the tiny pack (src/cli/defaults.ts)
};
const RULE = 'docs/architecture.md, "The dependency rule"';
const ALL = LAYERS.flat();
const layerOf = (f) => LAYERS.findIndex((l) => l.includes(f));

/** A specifier that reaches folder `f` (of src/, or bench/) from src/x, src/x/y, bench/ or e2e/. */
function reaches(f) {
  if (f === 'pipeline') return '^(\\.\\./)+(src/)?pipeline/(?!schedulers/)';
  if (f === 'bench') return '^(\\.\\./)+bench/';
  return `^(\\.\\./)+(src/)?${f}/`;
}

// Test code: *.test.ts(x), *.e2e.ts, test/, e2e/, and fixtures inside src named *-fixture(s).ts
// or *-test-*.ts (and src/packs/test-pack.ts). It may import anything; production code never
// imports it. (src/ui/test-api.ts is production code: the app's devtools handle.)
const TEST_FILES = [
  '**/*.test.ts',
  '**/*.test.tsx',
  '**/*.e2e.ts',
  '**/*-fixture.ts',
  '**/*-fixtures.ts',
  '**/*-test-*.ts',
  'src/packs/test-pack.ts',
  'test/**',
  'e2e/**',
];
const TEST_CODE = {
  regex:
    '(^(\\.\\./)+test/|\\.test\\.tsx?$|\\.e2e\\.ts$|-fixtures?\\.ts$|-test-[^/]*\\.ts$|(^|/)packs/test-pack\\.ts$|^\\./test-pack\\.ts$)',
  message: `production code may not import test code (test/, *.test.ts, src fixtures); see ${RULE}`,
};
const ORT = {
  regex: '^onnxruntime-web(/|$)',
  message: `only src/onnx/ort.ts imports onnxruntime-web (its version quirks live in one place); see ${RULE}`,
};

/**
 * The two rules for one block: no-restricted-imports for static imports and re-exports, and
 * no-restricted-syntax for import() (which no-restricted-imports does not see). esquery
 * regexes may not contain "/", hence \x2F. `typesOk` patterns still allow `import type`.
 */
function forbid(patterns, typesOk = []) {
  const all = [...patterns.map((p) => ({ ...p })), ...typesOk.map((p) => ({ ...p, allowTypeImports: true }))];
  return {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      { patterns: all.map((p) => ({ ...p, caseSensitive: true })) },
    ],
    'no-restricted-syntax': [
      'error',
      ...all.map((p) => ({
        selector: `ImportExpression > Literal[value=/${p.regex.replaceAll('/', '\\x2F')}/]`,
        message: p.message,
      })),
    ],
  };
}

const label = (f) => (f === 'bench' ? 'bench' : `src/${f}`);
const upward = (from, to) => ({
  regex: reaches(to),
  message:
    layerOf(to) === layerOf(from)
      ? `${label(from)} may not import ${label(to)} (same layer ${layerOf(to)}, not a listed peer); see ${RULE}`
      : `${label(from)} may not import ${label(to)} (layer ${layerOf(from)} → ${layerOf(to)}); see ${RULE}`,
});

/** What folder `from` may not import: higher layers and same-layer folders not in PEERS. */
function forbiddenFor(from) {
  const lf = layerOf(from);
  const peers = PEERS[from] ?? [];
  return ALL.filter((to) => to !== from && (layerOf(to) > lf || (layerOf(to) === lf && !peers.includes(to))));
}

/** One block per folder of the layer table (production files only). */
function layerBlock(from, { ort = true } = {}) {
  const patterns = forbiddenFor(from).map((to) => upward(from, to));
  if (from === 'pipeline/schedulers') {
    // Pure numerics over plain arrays: only the domain, so packs can check a scheduler config
    // with the samplers at build time.
    patterns.push({
      regex: '^\\.\\./(?!\\.\\./domain/)',
      message: `src/pipeline/schedulers imports only src/domain (layer 1, pure numerics); see ${RULE}`,
    });
  }
  if (from === 'bench') {
    patterns.push({
      regex: '^(\\.\\./)+src/cli/(?!defaults\\.ts$)',
      message: `bench may import only src/cli/defaults.ts from the CLI (where the tiny pack lives); see ${RULE}`,
    });
  }
  return block(from, patterns, ort);
}

function block(from, patterns, ort) {
  const all = [...patterns];
  // bench is a dev tool, not shipped: test/random.ts's seeded data is fine there.
  if (from !== 'bench') all.push(TEST_CODE);
  if (ort) all.push(ORT);
  const dir = from === 'bench' ? 'bench' : `src/${from}`;
  return {
    files: [`${dir}/**/*.{ts,tsx}`],
    ignores: [...TEST_FILES, ...(from === 'pipeline' ? ['src/pipeline/schedulers/**'] : [])],
    rules: forbid(all),
  };
}

// Only session.ts drives the pipeline on the GPU; the other session modules (request
// validation, default resolution, generation metadata and PNG encoding) stay GPU-free so the
// UI can run them on the main thread. This block replaces the session layer's for them.
const sessionGpuFreeBlock = (() => {
  const b = layerBlock('session');
  const gpuFree = ['engine', 'kernels', 'models', 'onnx', 'pipeline', 'training'].map((to) => ({
    regex: reaches(to),
    message: `src/session modules other than session.ts may not import src/${to}: the UI runs them on the main thread; see ${RULE}`,
  }));
  const patterns = b.rules['@typescript-eslint/no-restricted-imports'][1].patterns.map(
    ({ allowTypeImports: _, ...p }) => p,
  );
  return { ...b, ignores: [...b.ignores, 'src/session/session.ts'], rules: forbid([...patterns, ...gpuFree]) };
})();

// The UI runs on the main thread and never touches the GPU: it reaches the worker only through
// worker/client.ts (and the types of worker/api.ts). On the main thread it may use the GPU-free
// layers it needs: domain, image (upload checks, PNG text chunks), storage (the IndexedDB
// library lives on the main thread) and packs/pack-io-browser.ts (what a picked folder holds).
// From the session it may use the GPU-free modules (request validation, defaults, generation
// metadata, PNG encoding); session.ts, which drives the pipeline, runs in the worker: its
// types may be imported, its code may not.
const uiMessage = (to, why) => `src/ui may not import ${to}: ${why}; see ${RULE}`;
const uiBlock = {
  files: ['src/ui/**/*.{ts,tsx}'],
  ignores: TEST_FILES,
  rules: forbid(
    [
      ...['engine', 'kernels', 'models', 'onnx', 'pipeline', 'training', 'cli', 'bench', 'sw'].map((to) => ({
        regex: reaches(to),
        message: uiMessage(`src/${to}`, 'the UI never runs GPU or Node code; ask the worker through worker/client.ts'),
      })),
      {
        regex: reaches('pipeline/schedulers'),
        message: uiMessage('src/pipeline/schedulers', 'sampling runs in the worker'),
      },
      {
        regex: '^(\\.\\./)+packs/(?!pack-io-browser\\.ts$)',
        message: uiMessage('src/packs except pack-io-browser.ts', 'packs are built and loaded in the worker'),
      },
      {
        regex: '^(\\.\\./)+worker/(?!(client|api)\\.ts$)',
        message: uiMessage('src/worker except client.ts and api.ts', 'the worker is reached through its client'),
      },
      TEST_CODE,
      ORT,
    ],
    [
      {
        regex: '^(\\.\\./)+(src/)?session/session\\.ts$',
        message: uiMessage('src/session/session.ts (`import type` is fine)', 'it drives the pipeline in the worker'),
      },
    ],
  ),
};

const mainBlock = {
  files: ['src/main.tsx'],
  rules: forbid([
    ...ALL.filter((f) => !['ui', 'sw', 'domain'].includes(f)).map((to) => ({
      regex: `^\\./${to}/`,
      message: `src/main.tsx mounts the UI and registers the service worker, nothing else; see ${RULE}`,
    })),
    ORT,
  ]),
};

const folders = ALL.filter((f) => f !== 'ui');

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'bench/results*.json',
      'bench/.scale/',
      'e2e/artifacts/',
      'models/',
      'public/packs/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', navigator: 'readonly', self: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // Type-aware rules (they need the TypeScript program: projectService reads tsconfig.json).
  // Chosen for bugs the compiler does not catch: promises nobody awaits or that are passed
  // where a void callback is expected (a rejection then vanishes), awaiting non-promises,
  // non-Error throws and rejections (the worker maps errors by kind, so a bare value loses
  // it), "[object Object]" in messages, and assertions that no longer assert anything.
  // The no-unsafe-* family is left off: parsed JSON is validated by hand and typed at the
  // validator, and those rules would flag every step of it.
  {
    files: ['**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.e2e.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/only-throw-error': 'error',
      // Passing a reason on unchanged (an abort reason, a caught value) is fine; a literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/restrict-plus-operands': 'error',
      // Off: with TypeScript 6 its checker disagrees with tsc on overloads and generic
      // inference (it called assertions tsc needs unnecessary, e.g. getContext on a canvas
      // union, a spec table's literal types), and its verdict changed with the files linted.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'error',
      '@typescript-eslint/no-duplicate-type-constituents': 'error',
      '@typescript-eslint/no-array-delete': 'error',
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
    },
  },
  // The dependency rule. Every file (tests, scripts, e2e included) keeps onnxruntime-web out;
  // then each production folder gets its block (a later block replaces a rule's options, so
  // each block carries the whole list for its files); last, the one file that imports
  // onnxruntime-web keeps its layer's rule without that ban.
  { files: ['**/*.{ts,tsx,js,mjs}'], rules: forbid([ORT]) },
  ...folders.map((f) => layerBlock(f)),
  sessionGpuFreeBlock,
  uiBlock,
  mainBlock,
  { ...layerBlock('onnx', { ort: false }), files: ['src/onnx/ort.ts'] },
);
