// The product's top-level models/ folder holds packs (models/<name>/manifest.json), written
// there by `likeness pack` and served to the app at /models/<name>/: by the dev server
// straight from the folder, and by the build as a copy in dist/models/ (so `vite preview`
// and any static host serve them too). Folders without a manifest.json — among them the
// hidden temporary folders of a pack build in progress — are never served or copied.
import { cpSync, createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve, sep } from 'node:path';
import type { Plugin } from 'vite';

/** URL path prefix and folder name. */
export const MODELS_URL_PREFIX = '/models/';

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  gz: 'application/gzip',
};

/** Pack folders (names) under `modelsDir` that hold a manifest.json; hidden ones skipped. */
export function listPackFolders(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  return readdirSync(modelsDir)
    .filter((name) => !name.startsWith('.') && existsSync(join(modelsDir, name, 'manifest.json')))
    .sort();
}

/**
 * The file a /models/… request names, or null when it is outside a served pack (hidden
 * names, `..`, a folder, a pack without manifest).
 */
export function resolveModelsPath(modelsDir: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  const parts = rel.split('/').filter((p) => p !== '');
  if (parts.length < 2 || parts.some((p) => p.startsWith('.') || p.includes('\\'))) return null;
  if (!existsSync(join(modelsDir, parts[0], 'manifest.json'))) return null;
  const file = resolve(modelsDir, ...parts);
  if (!file.startsWith(resolve(modelsDir) + sep)) return null;
  if (!existsSync(file) || !statSync(file).isFile()) return null;
  return file;
}

/** Serves one file with HTTP Range support (the pack loader resumes downloads with Range). */
function sendFile(req: IncomingMessage, res: ServerResponse, file: string): void {
  const size = statSync(file).size;
  const ext = file.slice(file.lastIndexOf('.') + 1);
  res.setHeader('Content-Type', CONTENT_TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'no-cache');
  const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  if (m && (m[1] !== '' || m[2] !== '')) {
    if (m[1] === '') start = Math.max(0, size - Number(m[2]));
    else {
      start = Number(m[1]);
      if (m[2] !== '') end = Math.min(end, Number(m[2]));
    }
    if (start > end || start >= size) {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${size}`);
      res.end();
      return;
    }
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  }
  res.setHeader('Content-Length', String(end - start + 1));
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).pipe(res);
}

export function modelsFolderPlugin(modelsDir: string): Plugin {
  let outDir = 'dist';
  return {
    name: 'likeness-models-folder',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (!req.url?.startsWith(MODELS_URL_PREFIX) || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
        const file = resolveModelsPath(modelsDir, req.url.slice(MODELS_URL_PREFIX.length));
        if (!file) return next();
        sendFile(req, res, file);
      });
    },
    writeBundle(_options, bundle) {
      if (!('index.html' in bundle)) return; // a worker's sub-build, not the app
      for (const name of listPackFolders(modelsDir)) {
        cpSync(join(modelsDir, name), join(outDir, 'models', name), {
          recursive: true,
          filter: (src) =>
            !src
              .slice(modelsDir.length)
              .split(sep)
              .some((p) => p.startsWith('.')),
        });
      }
    },
  };
}
