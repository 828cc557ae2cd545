// The domain's plain data: what a concept, a pack summary and each request are, shared by
// every layer above (pipeline, training, storage, worker, CLI, UI). No code, no imports from
// those layers: they depend on this file, never the other way round.
import type { ErrorKind } from './errors.ts';
import type { SamplerName } from './samplers.ts';

export type { ErrorKind } from './errors.ts';

export interface WorkerError {
  kind: ErrorKind;
  message: string;
  /**
   * kind 'numerical' from personalize: the encoder's prediction before tuning diverged,
   * usable as a concept on its own (the UI may keep it).
   */
  fallback?: ConceptData;
}

// ---------------------------------------------------------------- packs

/**
 * A Stable Diffusion model picked on this device, to build a pack from inside the worker:
 * a diffusers folder, or one original-layout .safetensors checkpoint (with an optional
 * diffusers folder for its configs and image encoder, as `likeness pack --config`).
 */
export type ModelSource = (
  { kind: 'diffusers'; files: File[] } | { kind: 'single-file'; file: File; configFiles?: File[] }
) & {
  /** A CLIPVisionModelWithProjection folder, for models without image_encoder/. */
  imageEncoderFiles?: File[];
};

export type PackSource =
  | { kind: 'bundled' }
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: File[] }
  | { kind: 'build'; model: ModelSource; name?: string };

export interface DownloadProgress {
  /** manifest: reading it; build: converting a picked model; download: bytes arriving; verify: checking cached bytes; done. */
  phase?: 'manifest' | 'build' | 'download' | 'verify' | 'done';
  file: string;
  loadedBytes: number;
  totalBytes: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

export interface PackSummary {
  id: string;
  name: string;
  /** sha256 of the manifest: concepts record it to refuse other packs. */
  hash: string;
  licence: string;
  imageSize: number;
  placeholderDefault: string;
  hasTuningEncoder: boolean;
  /** False for an untrained (initialised-only) encoder, e.g. the tiny test pack's. */
  tuningEncoderTrained: boolean;
  totalBytes: number;
  defaults: GenerateSettings;
  /** Tuning steps to offer: the pack's default, or more when it has no tuning encoder. */
  tuningSteps: number;
  /** Text-encoder width: the length of v* (strict concept-file import checks it). */
  tokenDim: number;
  /** LoRA rank and the modules that carry LoRA, as concept files must match them. */
  rank: number;
  loraTargets: { module: string; in: number; out: number }[];
  /** Token ids of the text encoder: a concept's nearest token id must be below it. */
  vocabSize: number;
  /** Where the pack's files are kept: OPFS survives reloads and works offline; memory does not. */
  storage: 'opfs' | 'memory';
  /** Why the pack is only in memory (OPFS unavailable), to tell the user; null with OPFS. */
  storageNote: string | null;
  /** True when the network was unreachable and the cached copy was used. */
  offline: boolean;
  /**
   * The manifest's description: for packs built by `likeness pack` or the Model step, the
   * source, its scheduler and any warnings of the build (e.g. tensors left out); null if none.
   */
  description: string | null;
}

// ---------------------------------------------------------------- personalize

export interface CropRect {
  x: number;
  y: number;
  size: number;
}

export interface PersonalizeRequest {
  /** Encoded image bytes (JPEG/PNG/WebP) and the square crop in source pixels. */
  image: Uint8Array;
  mime: string;
  crop: CropRect | null;
  placeholder: string;
  steps: number;
  /** Packs without a tuning encoder start v* from this word (required then; one token). */
  classWord?: string;
  seed: number;
}

export type PersonalizeProgress =
  | { stage: 'encoding' }
  | { stage: 'nearest'; words: string[]; start: ConceptStart }
  | { stage: 'tuning'; step: number; steps: number; loss: number }
  | { stage: 'done' };

/**
 * Where tuning started: the pack's tuning encoder (trained, or the untrained test
 * initialisation), or — for a pack without one — the embedding of a class word.
 */
export type ConceptStart = { kind: 'encoder'; trained: boolean } | { kind: 'class-word'; word: string };

/** A personalized concept as plain data (what the library stores). */
export interface ConceptData {
  placeholder: string;
  /** v*: token_dim floats. */
  embedding: Float32Array;
  nearestWords: string[];
  hardTokenId: number;
  /**
   * A k-vector placeholder (an imported multi-vector embedding, or a trigger phrase of k
   * tokens): `embedding` holds k·token_dim floats and these are the k hard tokens of C_h.
   * Absent for one vector (hardTokenId is the hard token).
   */
  hardTokenIds?: number[];
  rank: number;
  alpha: number;
  blend: number;
  /** LoRA tensors by PEFT module path: A (r, in), B (out, r). */
  lora: { module: string; A: Float32Array; aShape: [number, number]; B: Float32Array; bShape: [number, number] }[];
  lossCurve: number[];
  packId: string;
  packHash: string;
  /** Absent in concepts made before it was recorded, and in files from other tools. */
  start?: ConceptStart;
}

// ---------------------------------------------------------------- generate

export type { SamplerName };

export interface GenerateSettings {
  steps: number;
  guidance: number;
  sampler: SamplerName;
  blend: number;
  batch: number;
}

export interface GenerateRequest extends GenerateSettings {
  prompt: string;
  negativePrompt: string;
  seed: number;
  concept: ConceptData | null;
  /** Which runtime runs the UNet. */
  runtime: 'onnx' | 'engine';
  /** How x_T is drawn from the seed (default 'philox'; 'torch' matches diffusers with a CPU generator). */
  rng?: RngName;
}

export interface ForeignImportRequest {
  files: { name: string; bytes: Uint8Array }[];
  /** The word to write in prompts (default: the embedding's token, the file's trigger, else the file name). */
  placeholder?: string;
  /** Import a LoRA's UNet part when it also trains the text encoder. */
  dropTextEncoder?: boolean;
  /** Import only a LoRA's attention projections when it also changes other UNet layers. */
  dropOtherLayers?: boolean;
}

/** 'philox': Likeness' own counter-based stream; 'torch': torch.randn on a CPU torch.Generator. */
export type RngName = 'philox' | 'torch';

export interface ImageResult {
  width: number;
  height: number;
  /** RGBA8 pixels. */
  rgba: Uint8ClampedArray;
  seed: number;
}

export type GenerateProgress = { step: number; steps: number; previews: ImageResult[] };
