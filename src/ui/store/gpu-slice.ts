// What the worker found out about WebGPU on this device.
import type { GpuReport } from '../../worker/api.ts';
import { toWorkerError, workerApi } from '../../worker/client.ts';
import type { Slice } from './app-state.ts';
import { patcher } from './patch.ts';

export interface GpuSlice {
  gpu: { status: 'probing' } | { status: 'done'; report: GpuReport };
  probeGpu(): Promise<void>;
}

export const createGpuSlice: Slice<GpuSlice> = (set) => {
  const patch = patcher(set);
  return {
    gpu: { status: 'probing' },
    async probeGpu() {
      set({ gpu: { status: 'probing' } });
      let report: GpuReport;
      try {
        report = await workerApi().probeGpu();
      } catch (err) {
        report = { ok: false, error: toWorkerError(err).message };
      }
      set({ gpu: { status: 'done', report } });
      // The Likeness engine needs WebGPU; the menu offers only ONNX Runtime then.
      if (!report.ok) patch('generate', { runtime: 'onnx' });
    },
  };
};
