// Test fixtures (imported by *.test.ts only): a small but real pack — safetensors weights
// with random values, a tokenizer file, and a manifest whose architecture is the tiny-sd
// reference checkpoint's config.json files carried verbatim. It lives in test/, not src/,
// because it uses the test helpers (seeded random numbers): src/ never imports test/.
import { readFileSync } from 'node:fs';
import { rng } from './random.ts';
import { describePackFile, type Manifest, type PackFile } from '../src/packs/manifest.ts';
import { writeSafetensors } from '../src/packs/safetensors.ts';
import { packDefaults } from '../src/packs/pack-defaults.ts';

const REF = new URL('../../shared/data/reference/', import.meta.url);
const json = (rel: string) => JSON.parse(readFileSync(new URL(rel, REF), 'utf8'));

/** The tiny pack's manifest fields other than `files`. */
export function tinyManifestBase(): Omit<Manifest, 'files'> {
  return {
    format: 'likeness-pack/1',
    name: 'tiny-sd',
    version: '1',
    licence: { id: 'Apache-2.0', notice: 'random weights' },
    architecture: {
      textEncoder: json('tiny-sd/text_encoder/config.json'),
      unet: json('tiny-sd/unet/config.json'),
      vae: json('tiny-sd/vae/config.json'),
      imageEncoder: json('tiny-sd/image_encoder/config.json'),
      lora: { rank: 4, alpha: 4, targets: ['to_q', 'to_k', 'to_v', 'to_out.0'] },
    },
    imageSize: 16,
    latentSize: 8,
    vaeScalingFactor: 0.18215,
    scheduler: json('tiny-sd/scheduler/scheduler_config.json'),
    // The table's defaults (src/domain/defaults.ts) with the tiny pack's own choices on top:
    // 10 DDIM steps are what the reference goldens' sampling loop runs (goldens.json
    // `ddim_loop`), and 3 nearest words, unlike the table's 5, let a test tell the pack's value
    // from the table's.
    defaults: packDefaults({ steps: 10, sampler: 'ddim', nearestWords: 3 }),
    tokenizer: { type: 'clip-bpe', merges: 'tokenizer/merges.txt', maxLength: 77, padToken: '<|endoftext|>' },
  };
}

export interface TestPack {
  manifest: Manifest;
  manifestText: string;
  /** path → bytes, manifest.json included. */
  files: Map<string, Uint8Array>;
}

/** A pack of ~`unetKiB` KiB of UNet weights plus small other files; deterministic per seed. */
export function makeTestPack(seed = 1, unetKiB = 256): TestPack {
  const r = rng(seed);
  const weights = (n: number, name: string) =>
    writeSafetensors([{ name, dtype: 'F32', shape: [n], data: r.normals(n) }], { format: 'pt' });
  const contents: [string, PackFile['role'], Uint8Array, PackFile['component']?][] = [
    ['text_encoder/model.safetensors', 'weights', weights(3000, 'text_model.final_layer_norm.weight'), 'text_encoder'],
    ['unet/diffusion_pytorch_model.safetensors', 'weights', weights(unetKiB * 256, 'conv_in.weight'), 'unet'],
    ['vae/diffusion_pytorch_model.safetensors', 'weights', weights(777, 'decoder.conv_out.bias'), 'vae'],
    ['image_encoder/model.safetensors', 'weights', weights(123, 'visual_projection.weight'), 'image_encoder'],
    ['tokenizer/merges.txt', 'tokenizer', new TextEncoder().encode('#version: 0.2\ni n\nt h\na n\n'), undefined],
  ];
  const files = new Map<string, Uint8Array>();
  const entries = contents.map(([path, role, bytes, component]) => {
    files.set(path, bytes);
    return describePackFile(path, role, bytes, component ? { component } : {});
  });
  const manifest: Manifest = { ...tinyManifestBase(), files: entries };
  const manifestText = JSON.stringify(manifest, null, 2);
  files.set('manifest.json', new TextEncoder().encode(manifestText));
  return { manifest, manifestText, files };
}
