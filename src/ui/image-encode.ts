// Browser-side image work for the UI: PNG encoding (with text chunks), thumbnails from the
// crop, and saving a file. OffscreenCanvas where there is one, a <canvas> otherwise.
import type { CropRect, ImageResult } from '../domain/types.ts';
import { insertPngText, type PngTextEntry } from '../image/png-text.ts';

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
  // tsc resolves getContext on the canvas union to every context type; typescript-eslint's
  // checker picks the 2D overload and calls the assertion unnecessary. tsc needs it.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const ctx = c.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Error('The browser could not create a 2D canvas.');
  return ctx;
}

/** RGBA pixels → PNG bytes with `text` chunks after IHDR. */
export async function encodePng(image: ImageResult, text: readonly PngTextEntry[] = []): Promise<Uint8Array> {
  const c = canvas(image.width, image.height);
  context2d(c).putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
  const png = await pngBytes(c);
  return text.length ? insertPngText(png, text) : png;
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
