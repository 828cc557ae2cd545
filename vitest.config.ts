import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Software WebGPU is slow and each worker holds its own device: two cores, two workers.
    pool: 'forks',
    maxWorkers: 2,
    // onnxruntime-web's wasm otherwise tiers up in V8's background threads, which stalls
    // the first WebGPU run and worker exit by ~35 s (docs/architecture.md).
    execArgv: ['--liftoff-only'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
