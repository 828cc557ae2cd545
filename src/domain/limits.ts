// Every numeric bound Likeness puts on what it reads from strangers — pack manifests, concept
// files, photos — stated once, here, and listed in docs/limits.md. The validators
// (packs/manifest.ts, storage/concept-limits.ts, image/*, ui/upload-validation.ts)
// import these numbers; none repeats one.
//
// Each bound is far above every real model or file it has to admit (Stable Diffusion 1.x/2.x,
// SDXL-sized configs, phone photos) and far below what would make the app allocate gigabytes
// or loop for minutes before noticing something is wrong.

/** An inclusive range [min, max]; `above` instead of min for an exclusive lower bound. */
export interface Range {
  min?: number;
  /** Strictly greater than. */
  above?: number;
  max: number;
  integer?: boolean;
}

const int = (min: number, max: number): Range => ({ min, max, integer: true });

// ------------------------------------------------------------------------------------------
// LoRA and concepts

/** LoRA rank r: the pack's (architecture.lora.rank) and every concept's. */
export const LORA_RANK = int(1, 1024);
/**
 * LoRA alpha: ΔW is scaled by alpha / rank. Real files use alpha ≤ 2·rank; 1024 admits every
 * rank's usual choices, while 1e6 (which turns every image into NaN) is refused.
 */
export const LORA_ALPHA: Range = { above: 0, max: 1024 };
/** alpha / rank: the LoRA scale. 64 is far above any trained adapter's (≤ 2). */
export const LORA_MAX_SCALE = 64;
/** The dual-path blend α of a concept and of a generation. */
export const BLEND: Range = { min: 0, max: 1 };
/** The CLIP BPE vocabulary (49408 ids); a pack's text encoder may not claim more than this bound. */
export const VOCAB_SIZE = int(1, 262_144);
/** A concept's placeholder, in Unicode code points. */
export const PLACEHOLDER_MAX_CHARS = 64;

// ------------------------------------------------------------------------------------------
// Pack manifests (architecture configs as diffusers / transformers write them)

export const MANIFEST_LIMITS = {
  /** Pixels per side of generated images, and the latent side (imageSize / VAE factor). */
  imageSize: int(8, 2048),
  latentSize: int(1, 256),
  vaeScalingFactor: { above: 0, max: 100 } as Range,
  /** Entries in files[] and the bytes of one file (16 GiB). */
  files: int(1, 1024),
  fileBytes: int(0, 16 * 2 ** 30),
  /** Transformer widths: hidden_size, projection_dim, cross_attention_dim. */
  width: int(1, 8192),
  /** MLP widths: intermediate_size. */
  mlpWidth: int(1, 32_768),
  /** Transformer depth: num_hidden_layers (CLIP ViT-bigG has 48). */
  layers: int(1, 64),
  heads: int(1, 128),
  maxPositions: int(2, 1024),
  /** The vision tower's input side and patch. */
  visionImageSize: int(1, 1024),
  patchSize: int(1, 1024),
  imageChannels: int(1, 4),
  /** UNet / VAE: channels per block, blocks, ResNets per block, transformers per block. */
  blockChannels: int(1, 4096),
  blocks: int(1, 8),
  layersPerBlock: int(1, 8),
  transformerLayersPerBlock: int(1, 16),
  /** attention_head_dim: diffusers' legacy head count, or the real head width. */
  attentionHeadDim: int(1, 1024),
  normGroups: int(1, 1024),
  latentChannels: int(1, 64),
  /** UNet in/out channels (inpainting UNets take 9). */
  unetChannels: int(1, 64),
  vaeChannels: int(1, 16),
  sampleSize: int(1, 4096),
  downsamplePadding: int(0, 8),
  /** layer_norm_eps / norm_eps. */
  eps: { above: 0, max: 1 } as Range,
  freqShift: { min: -16, max: 16 } as Range,
  /** Scheduler: training timesteps; steps_offset; clip_sample_range. */
  trainTimesteps: int(1, 10_000),
  stepsOffset: int(0, 1000),
  clipSampleRange: { above: 0, max: 100 } as Range,
  /** Sampling steps a pack may propose, tuning steps, batch, guidance, nearest words. */
  steps: int(1, 1000),
  tuningSteps: int(0, 1000),
  batchSize: int(1, 16),
  guidanceScale: { min: 0, max: 50 } as Range,
  tuningLearningRate: { above: 0, max: 1 } as Range,
  nearestWords: int(1, 100),
  /** Tokenizer sequence length. */
  maxLength: int(2, 1024),
  /** tokenizer.padToken and defaults.placeholder, in characters. */
  tokenChars: int(1, 64),
} as const;

/** How many problems a manifest or weights check lists before it only counts the rest. */
export const MAX_LISTED_PROBLEMS = 20;

// ------------------------------------------------------------------------------------------
// Photos

/** Pixels of a photo (docs/limits.md): refused from the header, before any pixel is decoded. */
export const MAX_PIXELS = 40_000_000;
/**
 * JPEG in Node (CLI, training): jpeg-js keeps every 8×8 block as its own Int32Array(64); a
 * 4:4:4 photo costs it about 35 bytes of memory per pixel (measured through decodeImage:
 * 4000 × 4000 → +529 MiB peak, 4.1 s; 8 MP → +290 MiB), so 40 MP would need ~1.4 GiB. Node
 * decodes JPEGs up to 16 MP (4896 × 3264); the browser app takes up to MAX_PIXELS with the
 * browser's own decoder.
 */
export const NODE_JPEG_MAX_PIXELS = 16_000_000;
/**
 * jpeg-js's own allocation cap, in MiB, consistent with NODE_JPEG_MAX_PIXELS: the bytes it
 * accounts for a 4:4:4 frame are 22 per pixel (blocks 12, lines 3, colour 3, RGBA 4), so
 * 16 MP × 22 B = 336 MiB, plus room for the file itself.
 */
export const NODE_JPEG_MAX_MEMORY_MB = 384;
/**
 * Scans in one JPEG: a progressive camera or web JPEG has ≤ 12 (libjpeg's default script
 * has 10); each scan walks its components' blocks again, so thousands of tiny scans cost
 * minutes (a 198 KB file with 2,000 scans took 11–15 s in jpeg-js).
 */
export const MAX_JPEG_SCANS = 64;
/**
 * The decoder's work: blocks summed over all scans. libjpeg's progressive script on a
 * 40 MP 4:4:4 photo is 14 × 625,000 = 8.75 M; a baseline photo is its block count.
 */
export const MAX_JPEG_SCAN_BLOCKS = 16_000_000;
/** Chunks in one PNG: a 40 MP PNG with 8 KiB IDATs has about 15,000; each costs a CRC and a record. */
export const MAX_PNG_CHUNKS = 65_536;
