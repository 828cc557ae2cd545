// One engine per test worker (Node + Dawn on the software Vulkan driver).
import { Engine } from '../src/engine/index.ts';

let engine: Promise<Engine> | null = null;

export function testEngine(): Promise<Engine> {
  engine ??= Engine.create();
  return engine;
}
