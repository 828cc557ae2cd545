import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { precacheServiceWorker } from './src/sw/precache-plugin.ts';
import { modelsFolderPlugin } from './src/packs/models-folder-plugin.ts';

// Cross-origin isolation lets onnxruntime-web use threads (SharedArrayBuffer).
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // Packs live in the top-level models/ folder, served at /models/<name>/.
  plugins: [react(), precacheServiceWorker(), modelsFolderPlugin(fileURLToPath(new URL('./models', import.meta.url)))],
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation },
  build: { target: 'es2022', sourcemap: true },
});
