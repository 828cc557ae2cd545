// Image decoding in Node (CLI, tests, training): PNG in pure TypeScript over node:zlib,
// JPEG through the jpeg-js package. WebP has no decoder in Node (the browser decodes it);
// another plugs in through `createNodeImageDecoder({ webp })`.
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { applyOrientation, jpegOrientation, tiffOrientation } from './exif.ts';
import { decodePng } from './png.ts';
import { inspectImage } from './sniff.ts';
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
      let img: RgbaImage;
      try {
        img = await decoder(bytes);
      } catch (e) {
        if (e instanceof ImageError) throw e;
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

// jpeg-js's memory cap (MiB) bounds what a hostile file can make it allocate; 40 MP RGBA
// is 160 MB, so 512 MiB leaves room for its working buffers.
const decodeJpeg: FormatDecoder = (bytes) => {
  const r = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512, maxResolutionInMP: 40 });
  return { width: r.width, height: r.height, data: new Uint8ClampedArray(r.data.buffer, r.data.byteOffset, r.data.byteLength) };
};

export const nodeImageDecoder: ImageDecoder = createNodeImageDecoder({ jpeg: decodeJpeg });

/** Decodes a PNG or JPEG file in Node (WebP: browser only). */
export function decodeImage(bytes: Uint8Array, mime?: string): Promise<RgbaImage> {
  return nodeImageDecoder.decode(bytes, mime);
}
