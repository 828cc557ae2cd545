// The worker's API as the UI sees it through comlink. Everything that touches the GPU
// lives behind this interface.
import type { GpuInfo } from '../engine/gpu.ts';

export type GpuReport =
  | { ok: true; info: GpuInfo; limits: { maxBufferSize: number; maxStorageBufferBindingSize: number } }
  | { ok: false; error: string };

export interface WorkerApi {
  /** Acquire the GPU (once) and describe it, or say why it is unavailable. */
  probeGpu(): Promise<GpuReport>;
}
