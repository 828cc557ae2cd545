#!/usr/bin/env node
// The `likeness` command: runs the TypeScript CLI through tsx (no build step needed).
import { register } from 'tsx/esm/api';
import v8 from 'node:v8';

// onnxruntime-web's wasm compiles in V8's background tiers otherwise, which stalls the
// first WebGPU run and process exit by ~35 s (docs/architecture.md).
v8.setFlagsFromString('--liftoff-only');
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
