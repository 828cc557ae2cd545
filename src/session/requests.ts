// What a shell asks the session for. Every setting is optional: what a request leaves out is
// resolved once, by resolve-settings.ts, from the concept, the pack manifest and DEFAULTS.
// The app's full requests (domain/types.ts) are instances of these.
import type { ConceptData, CropRect, RngName } from '../domain/types.ts';
import type { SamplerName } from '../domain/samplers.ts';

export interface SessionPersonalizeRequest {
  /** Encoded image bytes (JPEG/PNG/WebP) and the square crop in upright pixels (null: centre). */
  image: Uint8Array;
  mime: string;
  crop: CropRect | null;
  placeholder?: string;
  steps?: number;
  /** Packs without a tuning encoder start v* from this word (required then; one token). */
  classWord?: string;
  seed?: number;
  learningRate?: number;
  /** Noised views per tuning step. */
  batch?: number;
  /** Recompute UNet blocks in backward; absent: on from 256 px up. */
  checkpointing?: boolean;
}

export interface SessionGenerateRequest {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  sampler?: SamplerName;
  /** Generation α; absent: the concept's stored blend, then the pack's. */
  blend?: number;
  batch?: number;
  /** Image i of a batch uses seed + i. */
  seed?: number;
  concept: ConceptData | null;
  runtime?: 'onnx' | 'engine';
  rng?: RngName;
  /** Previews every this many steps (0 or absent: none). */
  previewEvery?: number;
}

/** Every long session call takes these: cancellation, and progress as it happens. */
export interface CallOptions<P> {
  signal?: AbortSignal;
  onProgress?: (p: P) => void;
}
