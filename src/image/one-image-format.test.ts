// Guards the single image-format module: the duplicates removed under issue 13 (a second
// CRC-32, a second magic-byte sniffer, a second PNG signature, a second crop shape, the
// 40 MP limit restated) must not come back in src/. A source scan, because each of these was
// a complete, working copy: nothing but a scan would notice a new one.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('..', import.meta.url));

/** Every non-test TypeScript source under src/, as [path relative to src/, text]. */
function sources(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) {
        out.push([relative(SRC, p).split('\\').join('/'), readFileSync(p, 'utf8')]);
      }
    }
  };
  walk(SRC);
  return out;
}

const filesMatching = (re: RegExp) =>
  sources()
    .filter(([, text]) => re.test(text))
    .map(([path]) => path);

describe('one image-format module', () => {
  it('finds the sources it scans', () => {
    expect(sources().length).toBeGreaterThan(50);
  });

  it('has one CRC-32 (the reflected polynomial appears once)', () => {
    expect(filesMatching(/0xedb88320/i)).toEqual(['image/crc32.ts']);
  });

  it('has one PNG signature and one magic-byte sniffer', () => {
    expect(filesMatching(/0x89,\s*0x50,\s*0x4e,\s*0x47/i)).toEqual(['image/png-text.ts']);
    expect(filesMatching(/'WEBP'|'GIF8|'ftyp'/)).toEqual(['image/image-header.ts']);
  });

  it('has one crop shape and states the pixel limit once', () => {
    expect(filesMatching(/interface CropRect\b/)).toEqual(['domain/types.ts']);
    expect(filesMatching(/\b40_?000_?000\b|\b40e6\b/)).toEqual(['domain/limits.ts']);
  });
});
