// Malformed packs are refused with messages that name the problem.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testEngine } from '../../test/engine.ts';
import { tinyPackDir } from '../../test/tiny-pack.ts';
import { loadPackFromFolder } from '../packs/pack-node.ts';
import { parseSafetensors, writeSafetensors } from '../packs/safetensors.ts';
import { sha256Hex } from '../packs/sha256.ts';
import { PackRuntime } from './pack-runtime.ts';

const UNET = 'unet/diffusion_pytorch_model.safetensors';

/** A copy of the tiny pack with the UNet weights rewritten by `edit` (manifest hash updated). */
function mutatedPack(
  edit: (tensors: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[]) => void,
  fixHash = true,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'likeness-bad-pack-'));
  cpSync(tinyPackDir(), dir, { recursive: true });
  const f = parseSafetensors(new Uint8Array(readFileSync(join(dir, UNET))));
  const tensors = f
    .names()
    .map((name) => ({ name, dtype: 'F32' as const, shape: [...f.info(name).shape], data: f.float32(name) }));
  edit(tensors);
  const bytes = writeSafetensors(tensors);
  writeFileSync(join(dir, UNET), bytes);
  if (fixHash) {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const file = m.files.find((x: { path: string }) => x.path === UNET);
    file.bytes = bytes.length;
    file.sha256 = sha256Hex(bytes);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
  }
  return dir;
}

async function openPack(dir: string) {
  return PackRuntime.open(await testEngine(), await loadPackFromFolder(dir));
}

describe('malformed packs', () => {
  it('a missing tensor is named', async () => {
    const dir = mutatedPack((t) =>
      t.splice(
        t.findIndex((x) => x.name === 'mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight'),
        1,
      ),
    );
    await expect(openPack(dir)).rejects.toThrow(
      /unet: missing tensor 'mid_block\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight' \[64, 32\]/,
    );
  });

  it('a wrong shape is named with both shapes', async () => {
    const dir = mutatedPack((t) => {
      const x = t.find((y) => y.name === 'conv_in.weight')!;
      x.shape = [32, 4, 9];
    });
    await expect(openPack(dir)).rejects.toThrow(
      /'conv_in\.weight' has shape \[32, 4, 9\], the config implies \[32, 4, 3, 3\]/,
    );
  });

  it('a file whose bytes do not match the manifest hash is refused, naming the file', async () => {
    const dir = mutatedPack((t) => t[0].data.fill(0), false);
    await expect(loadPackFromFolder(dir)).rejects.toThrow(/unet\/diffusion_pytorch_model\.safetensors/);
  });

  it('a truncated weights file is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'likeness-bad-pack-'));
    cpSync(tinyPackDir(), dir, { recursive: true });
    const bytes = readFileSync(join(dir, UNET));
    writeFileSync(join(dir, UNET), bytes.subarray(0, bytes.length - 100));
    await expect(loadPackFromFolder(dir)).rejects.toThrow(/size|bytes|truncat/i);
  });

  it('manifest errors are listed with their JSON paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'likeness-bad-pack-'));
    cpSync(tinyPackDir(), dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.format = 'likeness-pack/9';
    m.files[0].sha256 = 'xyz';
    delete m.architecture.unet.block_out_channels;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const err = await loadPackFromFolder(dir).then(
      () => 'loaded',
      (e: Error) => String(e),
    );
    expect(err).toMatch(/format: expected "likeness-pack\/1".*newer pack format/);
    expect(err).toMatch(/files\[0\]\.sha256/);
    expect(err).toMatch(/architecture\.unet\.block_out_channels/);
  });
});
