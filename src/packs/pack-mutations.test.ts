// Structured mutations of packs, one generator per class of issue 12: manifest numbers (layer
// counts, widths, sizes, steps, LoRA), files of 0 bytes and manifests with invalid UTF-8
// through both loaders, damaged tokenizer merges, ONNX external-data ranges. Every input is
// refused with the module's typed error or accepted as something usable, within a time and
// memory bound per input; error text stays short however absurd the input.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bounded } from '../../test/bounded.ts';
import { rng, type Rng } from '../../test/random.ts';
import { MANIFEST_LIMITS } from '../domain/limits.ts';
import { checkOnnxExternalData } from '../onnx/onnx-external-check.ts';
import { encodeModel, OnnxDataType } from '../onnx/onnx-proto.ts';
import { openTokenizer } from '../pipeline/pack-runtime.ts';
import { checkPackWeights, PackWeightsError } from './pack-weights-check.ts';
import { describePackFile, ManifestError, validateManifest, type Manifest } from './manifest.ts';
import { PackFileError } from './pack-file-error.ts';
import { loadPackFromUrl, PackLoadError } from './pack-loader.ts';
import { loadPackFromFolder } from './pack-node.ts';
import type { SafetensorsHeader } from './safetensors.ts';
import { makeTestPack, tinyManifestBase } from '../../test/test-pack.ts';

const pick = <T>(g: Rng, xs: readonly T[]): T => xs[g.int(0, xs.length - 1)];
type Json = Record<string, unknown>;

// Every numeric manifest field, as a path into the JSON.
const NUMERIC_PATHS = [
  'imageSize',
  'latentSize',
  'vaeScalingFactor',
  'architecture.textEncoder.vocab_size',
  'architecture.textEncoder.hidden_size',
  'architecture.textEncoder.intermediate_size',
  'architecture.textEncoder.num_hidden_layers',
  'architecture.textEncoder.num_attention_heads',
  'architecture.textEncoder.max_position_embeddings',
  'architecture.imageEncoder.hidden_size',
  'architecture.imageEncoder.num_hidden_layers',
  'architecture.imageEncoder.image_size',
  'architecture.imageEncoder.patch_size',
  'architecture.vae.latent_channels',
  'architecture.vae.layers_per_block',
  'architecture.vae.norm_num_groups',
  'architecture.unet.sample_size',
  'architecture.unet.layers_per_block',
  'architecture.unet.norm_num_groups',
  'architecture.unet.cross_attention_dim',
  'architecture.unet.attention_head_dim',
  'architecture.lora.rank',
  'architecture.lora.alpha',
  'scheduler.num_train_timesteps',
  'defaults.steps',
  'defaults.batchSize',
  'defaults.tuningSteps',
  'defaults.nearestWords',
  'tokenizer.maxLength',
  'files.0.bytes',
] as const;
const HOSTILE = [0, -1, 1, 2, 3, 7, 64, 65, 1000, 100_000, 1_000_000, 2 ** 31, 2 ** 53, 1e300, 0.5, 1e-300];

function setPath(o: Json, path: string, v: unknown): void {
  const keys = path.split('.');
  let at: Json = o;
  for (const k of keys.slice(0, -1)) at = at[k] as Json;
  at[keys.at(-1)!] = v;
}

function baseManifest(): Json {
  return JSON.parse(JSON.stringify({ ...tinyManifestBase(), files: makeTestPack(1, 4).manifest.files })) as Json;
}

const EMPTY = { byName: new Map() } as unknown as SafetensorsHeader;

describe('manifest: structured numeric mutations', () => {
  it('300 generated values: refused with a short ManifestError, or within bounds and cheap to check', async () => {
    const g = rng(12_3);
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const m = baseManifest();
      const edits: string[] = [];
      for (let k = g.int(1, 3); k > 0; k--) {
        const path = pick(g, NUMERIC_PATHS);
        const v = g.uniform() < 0.8 ? pick(g, HOSTILE) : Math.floor(10 ** (g.uniform() * 9));
        setPath(m, path, v);
        edits.push(`${path}=${v}`);
      }
      const label = `mutation ${i}: ${edits.join(', ')}`;
      const r = await bounded(
        label,
        () => {
          const manifest = validateManifest(m);
          // An accepted manifest's weights check is bounded too (it built one string per
          // missing tensor: 3 GiB for a million layers).
          try {
            checkPackWeights(manifest, { text_encoder: EMPTY, unet: EMPTY, vae: EMPTY, image_encoder: EMPTY });
          } catch (e) {
            if (!(e instanceof PackWeightsError)) return e; // a config the models reject: reported below
            expect(e.message.length, label).toBeLessThan(10_000);
          }
          return manifest;
        },
        { ms: 2000, mib: 100 },
      );
      if (r.ok) {
        if (!(r.value instanceof Error)) {
          accepted++;
          const a = (r.value as Manifest).architecture.textEncoder;
          expect(a.num_hidden_layers, label).toBeLessThanOrEqual(MANIFEST_LIMITS.layers.max);
          expect((r.value as Manifest).latentSize, label).toBeLessThanOrEqual(MANIFEST_LIMITS.latentSize.max);
        }
      } else {
        if (!(r.error instanceof ManifestError)) throw r.error;
        expect(r.error.message.length, label).toBeLessThan(5000);
      }
    }
    expect(accepted).toBeGreaterThan(3);
  });
});

async function writeFolder(files: Map<string, Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'likeness-mut-'));
  for (const [p, bytes] of files) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), bytes);
  }
  return dir;
}

const mapFetch =
  (files: Map<string, Uint8Array>): typeof fetch =>
  async (input: RequestInfo | URL) => {
    const body = files.get(new URL(input instanceof Request ? input.url : input).pathname.slice(1));
    return body ? new Response(body.slice(), { status: 200 }) : new Response('', { status: 404 });
  };

describe('pack loaders: the URL and folder loaders agree on generated packs', () => {
  it('24 packs with empty files and invalid UTF-8 in the manifest: same outcome both ways', async () => {
    const g = rng(4);
    for (let i = 0; i < 24; i++) {
      const { manifest, files } = makeTestPack(i, 2);
      const out = new Map(files);
      const entries = [...manifest.files];
      for (let k = g.int(0, 2); k > 0; k--) {
        const path = `extra/empty-${k}.txt`;
        out.set(path, new Uint8Array(0));
        entries.push(describePackFile(path, 'other', new Uint8Array(0)));
      }
      let text = new TextEncoder().encode(JSON.stringify({ ...manifest, files: entries }));
      if (g.uniform() < 0.5) {
        // an invalid UTF-8 sequence inside a string value
        const at = new TextDecoder().decode(text).indexOf('random weights') + g.int(0, 5);
        text = text.slice();
        text[at] = pick(g, [0xff, 0xc3, 0xe2, 0x80]);
      }
      out.set('manifest.json', text);
      const label = `pack ${i}`;
      const viaUrl = await bounded(label, () =>
        loadPackFromUrl('https://pack.test/manifest.json', { fetch: mapFetch(out) }),
      );
      const dir = await writeFolder(out);
      try {
        const viaFolder = await bounded(label, () => loadPackFromFolder(dir));
        expect(viaFolder.ok, label).toBe(viaUrl.ok);
        if (!viaUrl.ok && !viaFolder.ok) {
          for (const e of [viaUrl.error, viaFolder.error]) {
            expect(e, label).toBeInstanceOf(PackLoadError);
            expect((e as PackLoadError).code, label).toBe('manifest');
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});

describe('tokenizer merges: structured damage', () => {
  it('12 damaged merges files: a PackFileError naming the file, or the full vocabulary', async () => {
    const merges = new Uint8Array(
      readFileSync(new URL('../../../shared/data/reference/tiny-sd/tokenizer/merges.txt', import.meta.url)),
    );
    const m = validateManifest(baseManifest());
    const lines = new TextDecoder().decode(merges).split('\n');
    const g = rng(77);
    const damages: ((l: string[]) => Uint8Array)[] = [
      (l) => new TextEncoder().encode(l.filter((_, i) => i !== g.int(1, 48000)).join('\n')), // a line lost
      (l) => new TextEncoder().encode(l.map((x, i) => (i === g.int(1, 48000) ? l[i - 1] : x)).join('\n')), // repeated
      (l) => new TextEncoder().encode(l.map((x, i) => (i === g.int(1, 48000) ? `${x} extra` : x)).join('\n')), // 3 fields
      (l) => new TextEncoder().encode(l.slice(0, g.int(1, 48000)).join('\n')), // cut
      () => {
        const b = merges.slice();
        b[g.int(20, b.length - 1)] = 0xff; // invalid UTF-8
        return b;
      },
      (l) => new TextEncoder().encode(l.join('\r\n')), // Windows line ends
    ];
    for (let i = 0; i < 12; i++) {
      const bytes = damages[i % damages.length](lines);
      const r = await bounded(`merges damage ${i}`, () => openTokenizer(m, bytes), { ms: 3000, mib: 150 });
      if (r.ok) expect(r.value.vocabSize).toBe(49408);
      else {
        expect(r.error, `damage ${i}`).toBeInstanceOf(PackFileError);
        expect((r.error as PackFileError).file).toBe('tokenizer/merges.txt');
        expect((r.error as Error).message.length).toBeLessThan(500);
      }
    }
  });
});

describe('ONNX external data: structured range mutations', () => {
  it('200 generated offsets, lengths and locations: refused by name, or inside the file', async () => {
    const g = rng(99);
    const size = 4096;
    for (let i = 0; i < 200; i++) {
      const elements = g.int(1, 400);
      const offset = pick(g, [0, 8, size - 4 * elements, size - 4 * elements + 4, size, 2 ** 40, -8, g.int(0, 8192)]);
      const length = g.uniform() < 0.8 ? 4 * elements : pick(g, [0, 4 * elements + 4, 2 ** 53, 3]);
      const location = g.uniform() < 0.9 ? 'w.safetensors' : pick(g, ['../etc/passwd', 'other.bin', '']);
      let model: Uint8Array;
      try {
        model = encodeModel({
          graph: {
            nodes: [{ opType: 'Identity', inputs: ['w'], outputs: ['y'] }],
            initializers: [
              { name: 'w', dims: [length / 4], dataType: OnnxDataType.FLOAT, external: { location, offset, length } },
            ],
            inputs: [],
            outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT }],
          },
        });
      } catch {
        continue; // the writer refuses shapes that do not match: nothing to read
      }
      // A cut model may end before its initializer: then there is nothing to check.
      const cut = g.uniform() < 0.1;
      if (cut) model = model.subarray(0, g.int(0, model.length));
      const label = `graph ${i} (${location} @${offset}+${length})`;
      const r = await bounded(label, () => checkOnnxExternalData('g.onnx', model, new Map([['w.safetensors', size]])), {
        ms: 500,
        mib: 32,
      });
      if (r.ok) {
        if (!cut) expect(location === 'w.safetensors' && offset >= 0 && offset + length <= size, label).toBe(true);
      } else {
        expect(r.error, label).toBeInstanceOf(PackFileError);
        expect((r.error as Error).message, label).toMatch(/^g\.onnx: /);
      }
    }
  });
});
