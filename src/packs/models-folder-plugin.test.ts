import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listPackFolders, resolveModelsPath } from './models-folder-plugin.ts';

describe('models/ folder serving', () => {
  const dir = mkdtempSync(join(tmpdir(), 'likeness-models-'));
  mkdirSync(join(dir, 'tiny/unet'), { recursive: true });
  writeFileSync(join(dir, 'tiny/manifest.json'), '{}');
  writeFileSync(join(dir, 'tiny/unet/w.safetensors'), 'x');
  mkdirSync(join(dir, 'half'), { recursive: true }); // no manifest: an unfinished pack
  writeFileSync(join(dir, 'half/w.safetensors'), 'x');
  mkdirSync(join(dir, '.sd15.building-1'), { recursive: true });
  writeFileSync(join(dir, '.sd15.building-1/manifest.json'), '{}');
  writeFileSync(join(dir, 'secret.txt'), 'x');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists only finished, visible packs', () => {
    expect(listPackFolders(dir)).toEqual(['tiny']);
    expect(listPackFolders(join(dir, 'nope'))).toEqual([]);
  });

  it('serves files inside a pack and nothing else', () => {
    expect(resolveModelsPath(dir, 'tiny/manifest.json')).toBe(join(dir, 'tiny/manifest.json'));
    expect(resolveModelsPath(dir, 'tiny/unet/w.safetensors?x=1')).toBe(join(dir, 'tiny/unet/w.safetensors'));
    expect(resolveModelsPath(dir, 'tiny/unet')).toBeNull(); // a folder
    expect(resolveModelsPath(dir, 'half/w.safetensors')).toBeNull();
    expect(resolveModelsPath(dir, '.sd15.building-1/manifest.json')).toBeNull();
    expect(resolveModelsPath(dir, 'secret.txt')).toBeNull();
    expect(resolveModelsPath(dir, 'tiny/../secret.txt')).toBeNull();
    expect(resolveModelsPath(dir, 'tiny/%2e%2e/secret.txt')).toBeNull();
    expect(resolveModelsPath(dir, 'tiny/%E0%A4%A')).toBeNull();
  });
});
