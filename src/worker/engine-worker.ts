// The one worker that owns the GPUDevice, the engine and onnxruntime-web (docs/architecture.md).
import * as Comlink from 'comlink';
import { Engine } from '../engine/engine.ts';
import { createWorkerApi } from './worker-api.ts';

const api = createWorkerApi({ createEngine: () => Engine.create() });
// The UI sees only the WorkerApi methods (`host` is for tests of createWorkerApi).
Comlink.expose({
  probeGpu: api.probeGpu,
  loadPack: api.loadPack,
  personalize: api.personalize,
  generate: api.generate,
  importForeign: api.importForeign,
  cancel: api.cancel,
  conceptProblems: api.conceptProblems,
});
