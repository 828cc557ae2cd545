// The one worker that owns the GPUDevice and the engine.
import * as Comlink from 'comlink';
import { Engine } from '../engine/engine.ts';
import type { GpuReport, WorkerApi } from './api.ts';

let engine: Promise<Engine> | null = null;
const jobs = new Map<string, AbortController>();

function notBuilt(what: string): never {
  throw new Error(`${what} is not available in this build yet (the pipeline has not landed)`);
}

const api: WorkerApi = {
  async probeGpu(): Promise<GpuReport> {
    try {
      engine ??= Engine.create();
      const e = await engine;
      const l = e.device.limits;
      return {
        ok: true,
        info: e.info,
        limits: { maxBufferSize: l.maxBufferSize, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize },
      };
    } catch (err) {
      engine = null;
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  },
  async loadPack() {
    return notBuilt('Loading a model pack');
  },
  async personalize() {
    return notBuilt('Personalization');
  },
  async generate() {
    return notBuilt('Generation');
  },
  cancel(jobId: string) {
    jobs.get(jobId)?.abort();
  },
};

Comlink.expose(api);
