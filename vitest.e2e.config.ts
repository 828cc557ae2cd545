import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // The browser works in a worker on a software GPU, on 2 shared cores: what takes
    // milliseconds on a laptop can take seconds here, so polls wait up to 20 s.
    expect: { poll: { timeout: 20_000 } },
  },
});
