// Build the app once and serve it with `vite preview` on localhost for the browser tests.
import { spawnSync } from 'node:child_process';
import { build, preview, type PreviewServer } from 'vite';

let server: PreviewServer | null = null;

export async function setup({ provide }: { provide: (key: 'baseUrl', value: string) => void }) {
  // The bundled tiny pack (models/tiny, not in git) is built once when missing.
  const pack = spawnSync(process.execPath, ['scripts/ensure-tiny-pack.mjs'], { stdio: 'inherit' });
  if (pack.status !== 0) throw new Error('building the bundled tiny pack (npm run pack:tiny) failed');
  // Vitest sets NODE_ENV=test, which would make this a development build (React's dev
  // bundle, import.meta.env.PROD false, no service worker): test what users get instead.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ logLevel: 'warn', mode: 'production' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  server = await preview({ preview: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  provide('baseUrl', url);
}

export async function teardown() {
  await server?.close();
}

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
  }
}
