// The PNG a generated image is saved as, with its settings (generation-metadata.ts): the same
// bytes from the CLI, the worker and the app's gallery, because the pixels are deflated by
// deflate.ts (not node:zlib or the browser's canvas, whose bytes differ) and the text chunks
// are spliced in by the one image-format module.
import type { ImageResult } from '../domain/types.ts';
import { encodePng } from '../image/png-encode.ts';
import { insertPngText, type PngTextEntry } from '../image/png-text.ts';
import { deflateDeterministic } from './deflate.ts';
import { generationTextEntries, type GenerationRecord } from './generation-metadata.ts';
import type { ResolvedGenerate } from './resolve-settings.ts';

type Pixels = Pick<ImageResult, 'width' | 'height' | 'rgba'>;

/** RGBA pixels → PNG bytes with `text` entries after IHDR (tEXt, or iTXt beyond Latin-1). */
export async function pngWithText(image: Pixels, text: readonly PngTextEntry[] = []): Promise<Uint8Array> {
  const png = await encodePng(image.rgba, image.width, image.height, deflateDeterministic);
  return text.length ? insertPngText(png, text) : png;
}

/** A generated image as the PNG both shells save: A1111 `parameters`, `Software`, `likeness` JSON. */
export function generationPng(image: Pixels, record: GenerationRecord): Promise<Uint8Array> {
  return pngWithText(image, generationTextEntries(record));
}

export interface RecordContext {
  /** The pack's id (its manifest name, as PackSummary.id). */
  packId: string | null;
  concept: GenerationRecord['concept'];
  /** Milliseconds since 1970: when the image was made. */
  createdAt: number;
}

/**
 * What one image of a generation records, for the CLI and the app's gallery alike. The keys are in the order the app's gallery has
 * always written them, so the JSON entry is the same text for the same settings.
 */
export function generationRecord(
  s: Omit<ResolvedGenerate, 'seed' | 'concept'>,
  image: ImageResult,
  c: RecordContext,
): GenerationRecord {
  return {
    prompt: s.prompt,
    negativePrompt: s.negativePrompt,
    steps: s.steps,
    guidance: s.guidance,
    sampler: s.sampler,
    blend: s.blend,
    batch: s.batch,
    seed: image.seed,
    runtime: s.runtime,
    rng: s.rng,
    width: image.width,
    height: image.height,
    packId: c.packId,
    concept: c.concept,
    createdAt: c.createdAt,
  };
}
