// Application state. Components read it only through this store.
import { create } from 'zustand';
import type { GpuReport } from '../worker/api.ts';
import { workerApi } from '../worker/client.ts';

interface AppState {
  gpu: { status: 'probing' } | { status: 'done'; report: GpuReport };
  probeGpu(): Promise<void>;
}

export const useAppStore = create<AppState>((set) => ({
  gpu: { status: 'probing' },
  async probeGpu() {
    set({ gpu: { status: 'probing' } });
    const report = await workerApi().probeGpu();
    set({ gpu: { status: 'done', report } });
  },
}));
