// Build the app once and serve it with `vite preview` on localhost for the browser tests.
import { build, preview, type PreviewServer } from 'vite';

let server: PreviewServer | null = null;

export async function setup({ provide }: { provide: (key: 'baseUrl', value: string) => void }) {
  await build({ logLevel: 'warn' });
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
