// Browser-side image work for the UI: PNG encoding (with text chunks), thumbnails from the
// crop, and saving a file. Generated images are encoded by the session core, not the canvas,
// so the app saves the same bytes as the CLI; the canvas (OffscreenCanvas where there is one,
// a <canvas> otherwise) only makes thumbnails of photos.
import type { CropRect, ImageResult } from '../domain/types.ts';
import type { PngTextEntry } from '../image/png-text.ts';
import { pngWithText } from '../session/generation-png.ts';

type AnyCanvas = OffscreenCanvas | HTMLCanvasElement;

function canvas(width: number, height: number): AnyCanvas {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(width, height);
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  return c;
}

async function pngBytes(c: AnyCanvas): Promise<Uint8Array> {
  const blob =
    c instanceof HTMLCanvasElement
      ? await new Promise<Blob>((resolve, reject) =>
          c.toBlob((b) => (b ? resolve(b) : reject(new Error('The browser could not encode a PNG.'))), 'image/png'),
        )
      : await c.convertToBlob({ type: 'image/png' });
  return new Uint8Array(await blob.arrayBuffer());
}

function context2d(c: AnyCanvas) {
  // One branch per canvas type: on the union, getContext('2d') resolves to every context type.
  const ctx = c instanceof HTMLCanvasElement ? c.getContext('2d') : c.getContext('2d');
  if (!ctx) throw new Error('The browser could not create a 2D canvas.');
  return ctx;
}

/** RGBA pixels → PNG bytes with `text` chunks after IHDR: the session core's encoder (deterministic deflate). */
export function encodePng(image: ImageResult, text: readonly PngTextEntry[] = []): Promise<Uint8Array> {
  return pngWithText(image, text);
}

/** A small square PNG of the cropped photo (EXIF orientation applied by the decoder). */
export async function cropThumbnail(bytes: Uint8Array, mime: string, crop: CropRect, size = 128): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime }));
  try {
    const side = Math.min(size, crop.size);
    const c = canvas(side, side);
    const ctx = context2d(c);
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, crop.x, crop.y, crop.size, crop.size, 0, 0, side, side);
    return await pngBytes(c);
  } finally {
    bitmap.close();
  }
}

/** Starts a download of `data` as `fileName`. */
export function saveFile(data: Uint8Array | Blob, fileName: string, mime: string): void {
  const blob = data instanceof Blob ? data : new Blob([data as Uint8Array<ArrayBuffer>], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own reference by now; give slow browsers a moment.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
