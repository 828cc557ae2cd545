// Image decoding in the browser (main thread or worker): the browser's own decoders via
// createImageBitmap, which also applies EXIF orientation. Header checks run first, so a
// 100-megapixel file is refused without being decoded.
import { checkJpeg } from './jpeg-structure.ts';
import { readPngInfo } from './png.ts';
import { inspectImage } from './image-header.ts';
import { ImageError, type RgbaImage } from './types.ts';

export async function decodeImageBrowser(blob: Blob): Promise<RgbaImage> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const header = inspectImage(bytes, blob.type);
  // PNG chunks carry CRCs: check them here too, so damage and truncation get a precise message.
  if (header.format === 'png') readPngInfo(bytes);
  // A JPEG's scans are bounded and checked as in Node, before the browser's decoder allocates.
  if (header.format === 'jpeg') {
    const check = checkJpeg(bytes);
    if (!check.ok) throw new ImageError(check.kind, `The JPEG file cannot be used: ${check.detail}.`);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
  } catch {
    throw new ImageError(
      'corrupt',
      `The ${header.format.toUpperCase()} file could not be decoded: it is damaged or truncated.`,
    );
  }
  try {
    const { width, height } = bitmap;
    const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context');
    ctx.drawImage(bitmap, 0, 0);
    return { width, height, data: ctx.getImageData(0, 0, width, height).data };
  } finally {
    bitmap.close();
  }
}
