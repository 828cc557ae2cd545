// One engine per test worker (Node + Dawn on the software Vulkan driver).
import { Engine } from '../src/engine/index.ts';

let engine: Promise<Engine> | null = null;

export function testEngine(): Promise<Engine> {
  engine ??= Engine.create();
  return engine;
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
