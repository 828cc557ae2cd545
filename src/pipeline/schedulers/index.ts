// The samplers the app offers, built from a pack's diffusers scheduler config the way
// `XScheduler.from_config(pipe.scheduler.config)` does: keys a sampler does not know are
// ignored, keys it knows override its own defaults.
import { SAMPLERS } from '../../domain/samplers.ts';
import { cpuLatentOps } from './cpu-latent-ops.ts';
import { DdimScheduler } from './ddim.ts';
import { DpmSolverScheduler } from './dpm-solver.ts';
import { EulerScheduler } from './euler.ts';
import { ddimConfigFromJson, dpmSolverConfigFromJson, eulerConfigFromJson } from './schedule.ts';
import type { LatentOps, SamplerName, Scheduler } from './types.ts';

export * from './types.ts';
export { cpuLatentOps } from './cpu-latent-ops.ts';
export { DdimScheduler } from './ddim.ts';
export { DpmSolverScheduler } from './dpm-solver.ts';
export { EulerScheduler } from './euler.ts';
export { ddimConfigFromJson, dpmSolverConfigFromJson, eulerConfigFromJson, isSamplerName } from './schedule.ts';

export function createScheduler<T = Float32Array>(
  name: SamplerName,
  diffusersConfig: Record<string, unknown> = {},
  ops: LatentOps<T> = cpuLatentOps as unknown as LatentOps<T>,
): Scheduler<T> {
  switch (name) {
    case 'ddim':
      return new DdimScheduler(ddimConfigFromJson(diffusersConfig), ops);
    case 'euler':
      return new EulerScheduler(eulerConfigFromJson(diffusersConfig), ops);
    case 'dpmpp-2m':
      return new DpmSolverScheduler(dpmSolverConfigFromJson(diffusersConfig), ops);
    default:
      throw new Error(`unknown sampler "${name as string}" (${SAMPLERS.join(', ')})`);
  }
}
