// Image decoding in Node (CLI, tests, training): PNG in pure TypeScript over node:zlib,
// JPEG through the jpeg-js package. WebP has no decoder in Node (the browser decodes it);
// another plugs in through `createNodeImageDecoder({ webp })`.
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { applyOrientation, jpegOrientation, tiffOrientation } from './exif.ts';
import { MAX_PIXELS, NODE_JPEG_MAX_MEMORY_MB, NODE_JPEG_MAX_PIXELS } from '../domain/limits.ts';
import { checkJpeg } from './jpeg-structure.ts';
import { decodePng } from './png.ts';
import { inspectImage } from './image-header.ts';
import { ImageError, type ImageDecoder, type ImageFormat, type RgbaImage } from './types.ts';

/** A decoder for one format: bytes → RGBA8 as stored (orientation is applied afterwards). */
export type FormatDecoder = (bytes: Uint8Array) => RgbaImage | Promise<RgbaImage>;

const nodeInflate = (data: Uint8Array, maxOutputLength: number): Uint8Array => inflateSync(data, { maxOutputLength });

function decodePngNode(bytes: Uint8Array): RgbaImage {
  const { width, height, data, info } = decodePng(bytes, nodeInflate);
  const img = { width, height, data };
  return info.exif ? applyOrientation(img, tiffOrientation(info.exif)) : img;
}

export function createNodeImageDecoder(
  extra: Partial<Record<Exclude<ImageFormat, 'png'>, FormatDecoder>> = {},
): ImageDecoder {
  return {
    async decode(bytes: Uint8Array, mime?: string): Promise<RgbaImage> {
      // Header checks (empty, magic bytes, size limit) come before any decoding.
      const { format, width, height } = inspectImage(bytes, mime);
      if (format === 'png') return decodePngNode(bytes);
      const decoder = extra[format];
      if (!decoder) {
        throw new ImageError(
          'unsupported-format',
          `${format === 'jpeg' ? 'JPEG' : 'WebP'} decoding is not available in Node; ` +
            'convert the image to PNG or JPEG, or use the browser app.',
        );
      }
      if (format === 'jpeg') checkJpegForNode(bytes, width, height);
      let img: RgbaImage;
      try {
        img = await decoder(bytes);
      } catch (e) {
        if (e instanceof ImageError) throw e;
        // jpeg-js's own caps: the checks above make these unreachable for honest headers.
        if (e instanceof Error && /maxMemoryUsageInMB|maxResolutionInMP|allocate enough memory/.test(e.message)) {
          throw new ImageError(
            'too-large',
            `The ${format.toUpperCase()} file needs more memory to decode than Node allows (${NODE_JPEG_MAX_MEMORY_MB} MiB); use a smaller image.`,
          );
        }
        throw new ImageError(
          'corrupt',
          `The ${format.toUpperCase()} file could not be decoded: it is damaged or truncated.`,
        );
      }
      if (img.width !== width || img.height !== height) {
        throw new ImageError(
          'corrupt',
          `The ${format.toUpperCase()} file is damaged: its size does not match its header.`,
        );
      }
      return format === 'jpeg' ? applyOrientation(img, jpegOrientation(bytes)) : img;
    },
  };
}

/**
 * The Node size limit, then the structure checks the Photo step makes (no scan, too many
 * scans, too little data, no EOI), all before jpeg-js allocates anything.
 */
function checkJpegForNode(bytes: Uint8Array, width: number, height: number): void {
  if (width * height > NODE_JPEG_MAX_PIXELS) {
    throw new ImageError(
      'too-large',
      `The JPEG is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); in Node (the command line) JPEGs are decoded up to ${NODE_JPEG_MAX_PIXELS / 1e6} megapixels. Resize it, convert it to PNG, or use the browser app (up to ${MAX_PIXELS / 1e6} megapixels).`,
    );
  }
  const check = checkJpeg(bytes);
  if (!check.ok) {
    const code = check.kind;
    throw new ImageError(
      code,
      `The JPEG file ${code === 'too-large' ? 'is too costly to decode' : 'is damaged or truncated'}: ${check.detail}.`,
    );
  }
}

// jpeg-js's caps (limits.ts) bound what a hostile file can make it allocate, consistent with
// the Node JPEG size limit checked before it runs.
const decodeJpeg: FormatDecoder = (bytes) => {
  const r = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: true,
    maxMemoryUsageInMB: NODE_JPEG_MAX_MEMORY_MB,
    maxResolutionInMP: NODE_JPEG_MAX_PIXELS / 1e6,
  });
  return {
    width: r.width,
    height: r.height,
    data: new Uint8ClampedArray(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  };
};

export const nodeImageDecoder: ImageDecoder = createNodeImageDecoder({ jpeg: decodeJpeg });

/** Decodes a PNG or JPEG file in Node (WebP: browser only). */
export function decodeImage(bytes: Uint8Array, mime?: string): Promise<RgbaImage> {
  return nodeImageDecoder.decode(bytes, mime);
}
