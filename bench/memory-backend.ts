// The engine backend the memory tools measure with (bench/unet-memory.ts,
// bench/vae-decode-memory.ts), set up once so both count the same way:
//  - halfActivations: fp16 activations, as a runtime with fp16 weights on a shader-f16 adapter;
//  - hold: no ops.release, i.e. every activation held until its segment returns (the "before");
//  - accountingOnly: no kernel dispatch is recorded — which buffers an op takes depends on
//    shapes only, so the pool's numbers are a real run's, in seconds;
//  - bindingLimit (accounting only): plan the splits for an adapter with this binding limit;
//    nothing is validated against this device's own limit, since nothing is dispatched.
import type { Engine } from '../src/engine/engine.ts';
import { EngineOps } from '../src/models/engine-ops.ts';

export interface MemoryBackendOptions {
  accountingOnly?: boolean;
  hold?: boolean;
  halfActivations?: boolean;
  bindingLimit?: number;
}

/** The ops to run the model with; call after the weights are uploaded (it syncs first). */
export async function memoryBackend(engine: Engine, o: MemoryBackendOptions, what: string): Promise<EngineOps> {
  if (o.bindingLimit !== undefined && !o.accountingOnly) {
    throw new Error(`${what}: --binding-limit needs --accounting-only`);
  }
  let ops = new EngineOps(engine, { halfActivations: o.halfActivations ?? false });
  if (o.hold) {
    ops = Object.create(ops) as EngineOps;
    Object.defineProperty(ops, 'release', { value: undefined });
  }
  await engine.sync();
  if (o.accountingOnly) engine.dispatch = () => {};
  if (o.bindingLimit !== undefined) {
    Object.defineProperty(engine, 'maxBindingBytes', { get: () => o.bindingLimit, configurable: true });
  }
  return ops;
}
