// The CLI's two starts: `likeness pack` without --encoder makes a pack with NO tuning
// encoder (the untrained initialisation only behind --untrained-encoder), and
// `likeness personalize` on such a pack needs --class-word, says which start it used and
// records it in the concept file.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PHOTOS, TINY_SD } from '../../../test/tiny-pack.ts';
import { parseManifest } from '../../packs/manifest.ts';
import { parseSafetensors } from '../../packs/safetensors.ts';
import { UsageError } from '../args.ts';
import { packCommand } from './pack.ts';
import { personalizeCommand } from './personalize.ts';

const work = mkdtempSync(join(tmpdir(), 'likeness-class-word-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const manifestOf = (dir: string) => parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));

async function pack(out: string, ...flags: string[]): Promise<string[]> {
  const lines: string[] = [];
  expect(await packCommand(['--from', TINY_SD, '--out', out, '--no-graphs', ...flags], (l) => lines.push(l))).toBe(0);
  return lines;
}

describe('likeness pack: the tuning encoder is never silent', () => {
  it('without --encoder the pack has no tuning encoder, and says what that means', async () => {
    const out = join(work, 'bare');
    const lines = await pack(out);
    const m = manifestOf(out);
    expect(m.architecture.tuningEncoder).toBeUndefined();
    expect(m.files.some((f) => f.component === 'tuning_encoder')).toBe(false);
    expect(existsSync(join(out, 'tuning_encoder'))).toBe(false);
    expect(lines.join('\n')).toMatch(/NO tuning encoder.*--class-word/s);
  });

  it('--untrained-encoder packs the deterministic initialisation, marked untrained', async () => {
    const out = join(work, 'untrained');
    const lines = await pack(out, '--untrained-encoder', '--seed', '3');
    const te = manifestOf(out).architecture.tuningEncoder as { trained?: boolean } | undefined;
    expect(te?.trained).toBe(false);
    expect(manifestOf(out).files.some((f) => f.path === 'tuning_encoder/model.safetensors')).toBe(true);
    expect(lines.join('\n')).toMatch(/UNTRAINED/);
  });

  it('refuses --encoder with --untrained-encoder, and --seed without it', async () => {
    const out = join(work, 'refused');
    await expect(
      packCommand(['--from', TINY_SD, '--out', out, '--encoder', work, '--untrained-encoder'], () => {}),
    ).rejects.toThrow(UsageError);
    await expect(packCommand(['--from', TINY_SD, '--out', out, '--seed', '1'], () => {})).rejects.toThrow(
      /--seed.*--untrained-encoder/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe('likeness personalize on a pack without a tuning encoder', () => {
  const image = join(PHOTOS, 'chelsea.png');

  it('refuses to start without --class-word, saying why and what to add', async () => {
    const out = join(work, 'none.safetensors');
    const run = personalizeCommand(['--pack', join(work, 'bare'), '--image', image, '--out', out], () => {});
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(/no tuning encoder.*--class-word dog/);
    expect(existsSync(out)).toBe(false);
  });

  it('starts from the class word, says so, and records the start in the concept file', async () => {
    const out = join(work, 'dog.safetensors');
    const lines: string[] = [];
    const code = await personalizeCommand(
      ['--pack', join(work, 'bare'), '--image', image, '--out', out, '--class-word', 'dog', '--steps', '1'],
      (l) => lines.push(l),
    );
    expect(code).toBe(0);
    const log = lines.join('\n');
    expect(log).toMatch(
      /start: the class word "dog" \(this pack has no tuning encoder\); 1 steps at lr 0\.002, λ_w 0\.01, λ_e 0\.01/,
    );
    expect(log).toMatch(/started from the class word "dog"/);
    const meta = parseSafetensors(new Uint8Array(readFileSync(out))).metadata;
    expect(meta.start).toBe('class-word');
    expect(meta.class_word).toBe('dog');
  });
});
