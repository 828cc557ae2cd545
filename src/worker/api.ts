// The worker's API as the UI sees it through comlink. Everything that touches the GPU lives
// behind this interface; the UI keeps only plain data (no tensors) in its store.
// Long calls take a `jobId` chosen by the caller; `cancel(jobId)` aborts them (comlink cannot
// carry an AbortSignal), and they report progress through a proxied callback.
import type { GpuInfo } from '../engine/gpu.ts';

import type {
  ConceptData,
  DownloadProgress,
  ForeignImportRequest,
  GenerateProgress,
  GenerateRequest,
  ImageResult,
  PackSource,
  PackSummary,
  PersonalizeProgress,
  PersonalizeRequest,
} from '../domain/types.ts';

export type GpuReport =
  | { ok: true; info: GpuInfo; limits: { maxBufferSize: number; maxStorageBufferBindingSize: number } }
  | { ok: false; error: string };

export interface WorkerApi {
  /** Acquire the GPU (once) and describe it, or say why it is unavailable. */
  probeGpu(): Promise<GpuReport>;
  loadPack(jobId: string, source: PackSource, onProgress: (p: DownloadProgress) => void): Promise<PackSummary>;
  personalize(
    jobId: string,
    request: PersonalizeRequest,
    onProgress: (p: PersonalizeProgress) => void,
  ): Promise<ConceptData>;
  generate(jobId: string, request: GenerateRequest, onProgress: (p: GenerateProgress) => void): Promise<ImageResult[]>;
  /**
   * Other tools' LoRA and/or embedding .safetensors files (at most one of each) as a concept
   * for the loaded pack (docs/concepts.md, "Imports"); refusals say what was expected and found.
   */
  importForeign(jobId: string, request: ForeignImportRequest): Promise<ConceptData>;
  cancel(jobId: string): void;
  /**
   * What is wrong with a concept's fields for the loaded pack (storage/concept-limits.ts,
   * with the pack's tokenizer, which the main thread does not have); empty when sound or
   * when no pack is loaded. The library asks this before it keeps an imported concept.
   */
  conceptProblems(fields: {
    placeholder: string;
    hardTokenId: number;
    rank: number;
    alpha: number;
    blend: number;
  }): Promise<string[]>;
}
