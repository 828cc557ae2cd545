// One engine per test worker (Node + Dawn on the software Vulkan driver).
// LIKENESS_TEST_MAX_BINDING_BYTES=n runs every test with storage bindings limited to n bytes
// (Engine.setBindingLimit), so any suite can check that its ops split their work.
import { Engine } from '../src/engine/index.ts';

let engine: Promise<Engine> | null = null;

export function testEngine(): Promise<Engine> {
  const limit = process.env.LIKENESS_TEST_MAX_BINDING_BYTES;
  engine ??= Engine.create(limit ? { maxBindingBytes: Number(limit) } : {});
  return engine;
}

/**
 * The test engine where fp16 activations are tested: it must have `shader-f16` (lavapipe and
 * SwiftShader have it), so a missing feature fails the test instead of skipping it.
 */
export async function testEngineWithF16(): Promise<Engine> {
  const e = await testEngine();
  if (!e.f16) throw new Error('the test adapter has no shader-f16 (lavapipe has it)');
  return e;
}

let packedEngine: Promise<Engine> | null = null;

/**
 * A second engine on a device created without `shader-f16`, as on adapters that lack it:
 * fp16 weights are then read as packed pairs (unpack2x16float). Tests of that path use it.
 */
export function testEngineWithoutF16(): Promise<Engine> {
  packedEngine ??= Engine.create({ f16: false });
  return packedEngine;
}

/**
 * Run `fn` in a scope of `e` with storage bindings limited to `limit` bytes (undefined: the
 * device's), so small shapes take the split paths; the limit is restored afterwards.
 */
export async function withBindingLimit(e: Engine, limit: number | undefined, fn: () => Promise<void>): Promise<void> {
  e.setBindingLimit(limit);
  try {
    await e.scopeAsync(fn);
  } finally {
    e.setBindingLimit(undefined);
  }
}
