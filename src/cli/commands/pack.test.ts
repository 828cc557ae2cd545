import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.ts';
import { defaultPackName, packCommand } from './pack.ts';

const REF = new URL('../../../../shared/data/reference/', import.meta.url).pathname;

describe('likeness pack (command)', () => {
  it('names the pack after the source', () => {
    expect(defaultPackName('/models/stable-diffusion-v1-5/')).toBe('stable-diffusion-v1-5');
    expect(defaultPackName('C:/dl/dreamshaper_8.safetensors')).toBe('dreamshaper_8');
    expect(defaultPackName('./My Model (v2).ckpt')).toBe('My-Model-v2-');
    expect(() => defaultPackName('/')).toThrow(UsageError);
  });

  it('refuses bad options before reading anything', async () => {
    await expect(packCommand([], () => {})).rejects.toThrow(/needs --from/);
    await expect(packCommand(['--from', 'x.safetensors', '--variant', 'sdxl'], () => {})).rejects.toThrow(
      /--variant must be one of sd15, sd21, sd21-base/,
    );
  });

  it('packs a single file with --config into --out, logging what it left out', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'likeness-cli-pack-')), 'tiny-ldm');
    const lines: string[] = [];
    const rc = await packCommand(
      [
        '--from',
        `${REF}single-file/tiny-sd.ldm.safetensors`,
        '--config',
        `${REF}tiny-sd`,
        '--image-encoder',
        `${REF}tiny-sd/image_encoder`,
        '--out',
        out,
        '--no-graphs',
        '--quiet',
      ],
      (l) => lines.push(l),
    );
    expect(rc).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      'image_encoder',
      'manifest.json',
      'text_encoder',
      'tokenizer',
      // no tuning_encoder/: without --encoder a pack has none (personalize starts from a class word)
      'unet',
      'vae',
    ]);
    expect(lines.join('\n')).toMatch(/SD 1\.x single file[\s\S]*pack "tiny-sd\.ldm": 5 files/);
  });
});
