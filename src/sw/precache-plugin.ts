// Build step for the offline app shell: after vite has written the build, list every file
// the app may load (index.html, scripts, styles, the engine worker, onnxruntime-web's module
// and .wasm, public files) — but not model packs (models/), which live in OPFS — and write them with a
// version into sw-precache.js, which public/sw.js imports. The version changes whenever any
// listed file does, so the browser installs the service worker again after a new build.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { Plugin } from 'vite';

export const PRECACHE_FILE = 'sw-precache.js';

/** Paths (relative to the build folder, POSIX) the service worker does not precache. */
export function isPrecached(path: string): boolean {
  if (path.endsWith('.map')) return false;
  if (path === 'sw.js' || path === PRECACHE_FILE) return false;
  // Packs are downloaded, verified and kept in OPFS by the pack loader.
  if (path === 'models' || path.startsWith('models/')) return false;
  return true;
}

function walk(dir: string, root: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const rel = relative(root, full).split(sep).join('/');
    if (!isPrecached(rel)) continue;
    if (statSync(full).isDirectory()) walk(full, root, out);
    else out.push(rel);
  }
}

/** The precache list of a finished build folder, and a version hashed from the files' bytes. */
export function precacheManifest(outDir: string): { version: string; files: string[] } {
  const files: string[] = [];
  walk(outDir, outDir, files);
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f);
    h.update('\0');
    h.update(readFileSync(join(outDir, f)));
  }
  return { version: h.digest('hex').slice(0, 16), files };
}

export function precacheServiceWorker(): Plugin {
  let outDir = 'dist';
  return {
    name: 'likeness-precache',
    apply: 'build',
    enforce: 'post',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    writeBundle: {
      sequential: true,
      order: 'post',
      handler() {
        const manifest = precacheManifest(outDir);
        if (!manifest.files.includes('index.html')) return; // not the app build (e.g. a worker's)
        writeFileSync(
          join(outDir, PRECACHE_FILE),
          `// Written by the build (src/sw/precache-plugin.ts): the files public/sw.js caches.\nself.__LIKENESS_PRECACHE = ${JSON.stringify(manifest, null, 1)};\n`,
        );
      },
    },
  };
}
