import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_LISTED_PROBLEMS } from '../domain/limits.ts';
import { checkOnnxExternalData } from '../onnx/onnx-external-check.ts';
import { encodeModel, OnnxDataType } from '../onnx/onnx-proto.ts';
import { ClipTokenizer } from '../pipeline/clip-tokenizer.ts';
import { openTokenizer, padTokenId } from '../pipeline/pack-runtime.ts';
import { checkPackWeights, PackWeightsError } from './pack-weights-check.ts';
import { describePackFile, ManifestError, parseManifest, validateManifest, type Manifest } from './manifest.ts';
import { PackFileError } from './pack-file-error.ts';
import { loadPackFromUrl, PackLoadError } from './pack-loader.ts';
import { loadPackFromFolder } from './pack-node.ts';
import type { SafetensorsHeader } from './safetensors.ts';
import { makeTestPack, tinyManifestBase } from '../../test/test-pack.ts';

// The manifest as plain JSON, edited freely by the cases.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary edits of parsed JSON
type Loose = Record<string, any>;

const MERGES = new Uint8Array(
  readFileSync(new URL('../../../shared/data/reference/tiny-sd/tokenizer/merges.txt', import.meta.url)),
);

/** A fetch serving `files` below https://pack.test/ (200 only). */
function mapFetch(files: Map<string, Uint8Array>, log: string[] = []): typeof fetch {
  return async (input: RequestInfo | URL) => {
    const path = new URL(input instanceof Request ? input.url : input).pathname.slice(1);
    log.push(path);
    const body = files.get(path);
    if (!body) return new Response('not found', { status: 404 });
    return new Response(body.slice(), { status: 200, headers: { 'content-length': String(body.length) } });
  };
}

async function writeFolder(files: Map<string, Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'likeness-hardening-'));
  for (const [p, bytes] of files) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), bytes);
  }
  return dir;
}

/** The test pack with one more file, a 0-byte licence. */
function packWithEmptyFile(): Map<string, Uint8Array> {
  const { manifest, files } = makeTestPack(3, 4);
  const empty = new Uint8Array(0);
  const m: Manifest = { ...manifest, files: [...manifest.files, describePackFile('NOTICE.txt', 'other', empty)] };
  const out = new Map(files);
  out.set('NOTICE.txt', empty);
  out.set('manifest.json', new TextEncoder().encode(JSON.stringify(m)));
  return out;
}

function manifestWith(edit: (m: Loose) => void): Record<string, unknown> {
  const m = JSON.parse(JSON.stringify({ ...tinyManifestBase(), files: makeTestPack(1, 4).manifest.files }));
  edit(m);
  return m;
}

function issues(m: unknown): ManifestError {
  try {
    validateManifest(m);
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error('the manifest was accepted');
}

describe('pack loading: files the URL and folder loaders must treat alike', () => {
  it('a 0-byte file loads from a URL (it was never fetched, then "no entry")', async () => {
    const files = packWithEmptyFile();
    const pack = await loadPackFromUrl('https://pack.test/manifest.json', { fetch: mapFetch(files) });
    expect((await pack.read('NOTICE.txt')).length).toBe(0);
    const dir = await writeFolder(files);
    try {
      expect((await (await loadPackFromFolder(dir)).read('NOTICE.txt')).length).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a manifest with invalid UTF-8 is refused by the folder loader as by the URL loader', async () => {
    const files = makeTestPack(2, 4).files;
    const text = files.get('manifest.json')!;
    const at = new TextDecoder().decode(text).indexOf('random weights');
    const bad = text.slice();
    bad[at] = 0xff; // inside a string: replaced by U+FFFD it would still parse
    files.set('manifest.json', bad);
    const viaUrl = await loadPackFromUrl('https://pack.test/manifest.json', { fetch: mapFetch(files) }).catch(
      (e: unknown) => e,
    );
    const dir = await writeFolder(files);
    try {
      const viaFolder = await loadPackFromFolder(dir).catch((e: unknown) => e);
      for (const e of [viaUrl, viaFolder]) {
        expect(e).toBeInstanceOf(PackLoadError);
        expect((e as PackLoadError).code).toBe('manifest');
        expect((e as Error).message).toMatch(/not valid UTF-8/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('manifest bounds', () => {
  it('the tiny pack manifest is within every bound', () => {
    expect(() => validateManifest(manifestWith(() => {}))).not.toThrow();
  });

  it('layer counts, widths, latent size, steps and LoRA alpha have documented maxima', () => {
    const cases: [(m: Loose) => void, RegExp][] = [
      [
        (m) => (m.architecture.textEncoder.num_hidden_layers = 1_000_000),
        /textEncoder\.num_hidden_layers: expected an integer ≤ 64/,
      ],
      [(m) => (m.architecture.imageEncoder.num_hidden_layers = 100_000), /imageEncoder\.num_hidden_layers.*≤ 64/],
      [(m) => (m.architecture.textEncoder.hidden_size = 1_048_576), /hidden_size.*≤ 8192/],
      [(m) => (m.architecture.unet.layers_per_block = 5000), /unet\.layers_per_block.*≤ 8/],
      [
        (m) => (m.architecture.unet.block_out_channels = new Array(40).fill(32)),
        /block_out_channels: 40 blocks, more than 8/,
      ],
      [(m) => (m.latentSize = 100_000), /latentSize: expected an integer ≤ 256/],
      [(m) => (m.imageSize = 1e9), /imageSize.*≤ 2048/],
      [(m) => (m.architecture.lora.alpha = 1e300), /lora\.alpha: expected a number ≤ 1024/],
      [(m) => (m.architecture.lora.alpha = 1000), /alpha \/ rank = 250 is above 64/],
      [(m) => (m.architecture.lora.rank = 1e9), /lora\.rank.*≤ 1024/],
      [(m) => (m.scheduler.num_train_timesteps = 1e8), /num_train_timesteps.*≤ 10000/],
      [(m) => (m.defaults.steps = 5000), /defaults\.steps.*≤ 1000/],
      [(m) => (m.tokenizer.maxLength = 1e7), /maxLength.*≤ 1024/],
      [(m) => (m.tokenizer.padToken = 'a photo'), /padToken: must be one token/],
      [(m) => (m.files[0].bytes = 2 ** 50), /files\[0\]\.bytes.*≤ 17179869184/],
    ];
    for (const [edit, want] of cases) {
      const t0 = performance.now();
      const e = issues(manifestWith(edit));
      expect(e.message, want.source).toMatch(want);
      expect(performance.now() - t0).toBeLessThan(1000);
    }
  });

  it('error text is bounded: at most 20 problems listed, the rest counted', () => {
    const m = manifestWith((x) => {
      for (let i = 0; i < 500; i++) x[`extra_${i}`] = i;
    });
    const e = issues(m);
    expect(e.issues.length).toBe(500);
    expect(e.message.split('\n').length).toBe(MAX_LISTED_PROBLEMS + 2);
    expect(e.message).toMatch(/… and 480 more/);
  });

  it('the weights check keeps 20 problems as text however many tensors are missing', () => {
    const m = parseManifest(JSON.stringify(manifestWith(() => {})));
    const empty = { byName: new Map() } as unknown as SafetensorsHeader;
    const headers = { text_encoder: empty, unet: empty, vae: empty, image_encoder: empty };
    let e: unknown;
    try {
      checkPackWeights(m, headers);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(PackWeightsError);
    const w = e as PackWeightsError;
    expect(w.total).toBeGreaterThan(100);
    expect(w.problems.length).toBe(MAX_LISTED_PROBLEMS);
    expect(w.message).toMatch(new RegExp(`\\(${w.total} problems\\)`));
    expect(w.message.length).toBeLessThan(8000);
  });
});

describe('pack files that verify but cannot be used', () => {
  const m = parseManifest(JSON.stringify(manifestWith(() => {})));

  it('the real merges file opens; a damaged one is a PackFileError naming it', () => {
    expect(openTokenizer(m, MERGES).vocabSize).toBe(49408);
    const invalidUtf8 = MERGES.slice();
    invalidUtf8[100] = 0xc3;
    invalidUtf8[101] = 0x28;
    const cut = MERGES.subarray(0, MERGES.lastIndexOf(0x0a, MERGES.length >> 1) + 1);
    const lines = new TextDecoder().decode(MERGES).split('\n');
    lines[5000] = lines[4999]; // a repeated merge: ids shift
    const repeated = new TextEncoder().encode(lines.join('\n'));
    for (const [bytes, why] of [
      [invalidUtf8, /not valid UTF-8/],
      [cut, /damaged.*48894 merges/],
      [repeated, /49407 tokens.*vocab_size 49408/],
    ] as const) {
      let e: unknown;
      try {
        openTokenizer(m, bytes);
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(PackFileError);
      expect((e as PackFileError).file).toBe('tokenizer/merges.txt');
      expect((e as Error).message).toMatch(/^tokenizer\/merges\.txt: /);
      expect((e as Error).message).toMatch(why);
    }
  });

  it('a padToken that is not one vocabulary entry is refused when the pack opens', () => {
    const tokenizer = new ClipTokenizer(new TextDecoder().decode(MERGES));
    expect(padTokenId(m, tokenizer)).toBe(49407);
    // SD 2.x: transformers' CLIPTokenizer pads with vocab.json["!"] = 0 (see clip-tokenizer.test.ts).
    expect(padTokenId({ ...m, tokenizer: { ...m.tokenizer, padToken: '!' } }, tokenizer)).toBe(0);
    expect(() => padTokenId({ ...m, tokenizer: { ...m.tokenizer, padToken: 'xyzzyplugh' } }, tokenizer)).toThrow(
      /manifest\.json: tokenizer\.padToken "xyzzyplugh" is not one vocabulary entry \(as text it is \d+ tokens\)/,
    );
  });

  it('ONNX external data outside its weights file is named before onnxruntime sees it', () => {
    const graph = (offset: number, length: number, location = 'unet/w.safetensors') =>
      encodeModel({
        graph: {
          nodes: [{ opType: 'Identity', inputs: ['w'], outputs: ['y'] }],
          initializers: [
            { name: 'w', dims: [length / 4], dataType: OnnxDataType.FLOAT, external: { location, offset, length } },
          ],
          inputs: [],
          outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: [length / 4] }],
        },
      });
    const sizes = new Map([['unet/w.safetensors', 1000]]);
    expect(() => checkOnnxExternalData('unet/model.onnx', graph(8, 400), sizes)).not.toThrow();
    expect(() => checkOnnxExternalData('unet/model.onnx', graph(800, 400), sizes)).toThrow(
      /^unet\/model\.onnx: initializer 'w' points at bytes \[800, 1200\) of unet\/w\.safetensors, which has 1000 bytes/,
    );
    expect(() => checkOnnxExternalData('unet/model.onnx', graph(0, 400, 'other.bin'), sizes)).toThrow(
      /not one of the graph's weights files/,
    );
    expect(() => checkOnnxExternalData('unet/model.onnx', graph(8, 400).subarray(0, 30), sizes)).toThrow(PackFileError);
  });
});

describe('the tiny pack as built', () => {
  it('its ONNX graphs point inside their weights files', async () => {
    const { loadTinyPack } = await import('../../test/tiny-pack.ts');
    const pack = await loadTinyPack();
    const graphs = pack.manifest.files.filter((f) => f.role === 'onnx');
    expect(graphs.length).toBeGreaterThan(0);
    for (const g of graphs) {
      const sizes = new Map(
        pack.manifest.files.filter((f) => g.externalData?.includes(f.path)).map((f) => [f.path, f.bytes]),
      );
      checkOnnxExternalData(g.path, await pack.read(g.path), sizes);
    }
  });
});
