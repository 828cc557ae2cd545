// Image decoding in the browser (main thread or worker): the browser's own decoders via
// createImageBitmap, which also applies EXIF orientation. Header checks run first, so a
// 100-megapixel file is refused without being decoded.
import { readPngInfo } from './png.ts';
import { inspectImage } from './sniff.ts';
import { ImageError, type RgbaImage } from './types.ts';

export async function decodeImageBrowser(blob: Blob): Promise<RgbaImage> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const header = inspectImage(bytes, blob.type);
  // PNG chunks carry CRCs: check them here too, so damage and truncation get a precise message.
  if (header.format === 'png') readPngInfo(bytes);
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
