// Decoded images and the errors the upload path reports to the user.
import { BadInputError } from '../domain/errors.ts';

/** 8-bit RGBA, row-major, not premultiplied: the layout of ImageData. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ImageDecoder {
  /** Decodes a whole file; `mime` (from the File/Blob) only improves error messages. */
  decode(bytes: Uint8Array, mime?: string): Promise<RgbaImage>;
}

export type ImageErrorCode = 'empty' | 'not-an-image' | 'unsupported-format' | 'truncated' | 'corrupt' | 'too-large';

/** An upload problem with a message written for the person who picked the file. */
export class ImageError extends BadInputError {
  override readonly name = 'ImageError';
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function newImage(width: number, height: number): RgbaImage {
  return { width, height, data: new Uint8ClampedArray(width * height * 4) };
}

export function checkImage(img: RgbaImage, what = 'image'): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${what}: size ${width}×${height} is not a positive integer size`);
  }
  if (data.length !== width * height * 4) {
    throw new RangeError(`${what}: ${data.length} bytes for ${width}×${height} RGBA (expected ${width * height * 4})`);
  }
}
