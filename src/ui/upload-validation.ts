// Checks a photo in the main thread before anything reaches the worker, in the order that
// costs least: size 0, then the magic bytes and the claimed size from the header (a prefix
// of the file), then the chunk/segment structure (whole file), and only then a real decode.
// Each refusal has its own message saying what is wrong and what to do.
import { MAX_PIXELS } from '../domain/limits.ts';
import { checkStructure, IMAGE_FORMAT_NAME, readImageHeader, type ImageHeader } from '../image/image-header.ts';
import type { ImageFormat } from '../image/types.ts';

export const MAX_MEGAPIXELS = MAX_PIXELS / 1e6;
const PREFIX_BYTES = 64 * 1024;

export type UploadProblemKind = 'empty' | 'not-image' | 'too-large' | 'truncated' | 'corrupt' | 'unreadable';

export interface UploadProblem {
  kind: UploadProblemKind;
  /** One sentence on what is wrong, naming the file. */
  message: string;
  /** What to do about it. */
  hint: string;
}

export interface AcceptedUpload<Bitmap> {
  name: string;
  bytes: Uint8Array;
  header: ImageHeader;
  /** The decoded image, EXIF orientation applied (its size may be the header's turned 90°). */
  bitmap: Bitmap;
}

export type UploadResult<Bitmap> = { ok: true; upload: AcceptedUpload<Bitmap> } | { ok: false; problem: UploadProblem };

/** What validateUpload needs of a File (a Node Blob with a name works too). */
export interface FileLike {
  name: string;
  size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
  arrayBuffer(): Promise<ArrayBuffer>;
}

export function describeProblem(
  name: string,
  p:
    | { kind: 'empty' }
    | { kind: 'not-image'; detected: string | null }
    | { kind: 'too-large'; width: number; height: number }
    | { kind: 'truncated'; format: ImageFormat }
    | { kind: 'corrupt'; format: ImageFormat; detail: string }
    | { kind: 'unreadable'; reason: string },
): UploadProblem {
  const file = `“${name}”`;
  switch (p.kind) {
    case 'empty':
      return {
        kind: 'empty',
        message: `${file} is empty (0 bytes).`,
        hint: 'Choose the photo itself — not a shortcut, a cloud placeholder or a file that is still downloading.',
      };
    case 'not-image':
      return {
        kind: 'not-image',
        message: `${file} is not a PNG, JPEG or WebP image${p.detected ? ` — it looks like ${p.detected}` : ''}.`,
        hint: 'Pick a photo in one of those formats, or export it as JPEG or PNG first. (The file name’s extension is not what counts; its contents are.)',
      };
    case 'too-large': {
      const mp = (p.width * p.height) / 1e6;
      const scale = Math.sqrt((MAX_MEGAPIXELS * 1e6) / (p.width * p.height));
      const w = Math.floor(p.width * scale);
      const h = Math.floor(p.height * scale);
      return {
        kind: 'too-large',
        message: `${file} is ${p.width} × ${p.height} pixels (${mp.toFixed(1)} megapixels); the limit is ${MAX_MEGAPIXELS} megapixels.`,
        hint: `Resize it to at most about ${w} × ${h} and try again — the model only needs a small square of it.`,
      };
    }
    case 'truncated':
      return {
        kind: 'truncated',
        message: `${file} is cut short: the ${IMAGE_FORMAT_NAME[p.format]} file ends before its image data does.`,
        hint: 'It may not have finished downloading or copying. Get the file again and retry.',
      };
    case 'corrupt':
      return {
        kind: 'corrupt',
        message: `${file} is a damaged ${IMAGE_FORMAT_NAME[p.format]} file: ${p.detail}.`,
        hint: 'Open it in an image viewer and save or export it again, or use another copy.',
      };
    case 'unreadable':
      return {
        kind: 'unreadable',
        message: `${file} could not be read: ${p.reason}.`,
        hint: 'Check that the file still exists and that the browser may read it, then choose it again.',
      };
  }
}

/**
 * Validates `file`; `decode` is `createImageBitmap` in the browser (injected so the order of
 * checks can be tested in Node). Decoding happens only after the size check passed.
 */
export async function validateUpload<Bitmap>(
  file: FileLike,
  decode: (bytes: Uint8Array, mime: string) => Promise<Bitmap>,
): Promise<UploadResult<Bitmap>> {
  const refuse = (p: Parameters<typeof describeProblem>[1]): UploadResult<Bitmap> => ({
    ok: false,
    problem: describeProblem(file.name, p),
  });
  if (file.size === 0) return refuse({ kind: 'empty' });

  let bytes: Uint8Array;
  let whole: boolean;
  try {
    bytes = new Uint8Array(await file.slice(0, Math.min(file.size, PREFIX_BYTES)).arrayBuffer());
    whole = bytes.length === file.size;
  } catch (err) {
    return refuse({ kind: 'unreadable', reason: errorText(err) });
  }
  let result = readImageHeader(bytes, file.size);
  if (!result.ok && result.problem.kind === 'need-more') {
    // The header sits behind large metadata: read the whole file once.
    try {
      bytes = new Uint8Array(await file.arrayBuffer());
      whole = true;
    } catch (err) {
      return refuse({ kind: 'unreadable', reason: errorText(err) });
    }
    result = readImageHeader(bytes, file.size);
  }
  if (!result.ok) {
    const p = result.problem;
    if (p.kind === 'need-more') return refuse({ kind: 'unreadable', reason: 'the file changed while it was read' });
    return refuse(p);
  }
  const { header } = result;
  if (header.width * header.height > MAX_MEGAPIXELS * 1e6) {
    return refuse({ kind: 'too-large', width: header.width, height: header.height });
  }
  if (!whole) {
    try {
      bytes = new Uint8Array(await file.arrayBuffer());
    } catch (err) {
      return refuse({ kind: 'unreadable', reason: errorText(err) });
    }
  }
  const structure = checkStructure(bytes, header.format);
  if (structure?.kind === 'truncated') return refuse({ kind: 'truncated', format: header.format });
  if (structure) return refuse({ kind: 'corrupt', format: header.format, detail: structure.detail });

  let bitmap: Bitmap;
  try {
    bitmap = await decode(bytes, header.mime);
  } catch {
    return refuse({ kind: 'corrupt', format: header.format, detail: 'the browser could not decode its image data' });
  }
  return { ok: true, upload: { name: file.name, bytes, header, bitmap } };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
