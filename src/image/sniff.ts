// Format detection by magic bytes and image size from the header alone, so that empty,
// non-image, unsupported and gigantic files are refused before anything is decoded.
import { ImageError, MAX_PIXELS, type ImageFormat } from './types.ts';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const ascii = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));
const u16be = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const u16le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u24le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
export const u32be = (b: Uint8Array, at: number) =>
  ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** The format by magic bytes, or null. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return 'webp';
  return null;
}

/** Names image formats we recognise but do not take, for a precise message. */
function otherImageFormat(bytes: Uint8Array): string | null {
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) return 'GIF';
  if (bytes.length >= 2 && ascii(bytes, 0, 2) === 'BM') return 'BMP';
  if (bytes.length >= 4 && (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*')) return 'TIFF';
  if (bytes.length >= 12 && ascii(bytes, 4, 4) === 'ftyp') {
    const brand = ascii(bytes, 8, 4);
    if (/^(heic|heix|hevc|heim|heis|mif1|msf1)$/.test(brand)) return 'HEIC';
    if (/^avi[fs]$/.test(brand)) return 'AVIF';
  }
  return null;
}

const truncatedHeader = (format: string) =>
  new ImageError('truncated', `The ${format} file ends before its header is complete; it is truncated or damaged.`);

function pngSize(b: Uint8Array): [number, number] {
  // Signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian).
  if (b.length < 8 + 8 + 13) throw truncatedHeader('PNG');
  if (ascii(b, 12, 4) !== 'IHDR' || u32be(b, 8) !== 13) {
    throw new ImageError('corrupt', 'The PNG file is damaged: it does not start with an IHDR header chunk.');
  }
  return [u32be(b, 16), u32be(b, 20)];
}

function jpegSize(b: Uint8Array): [number, number] {
  // Walk the marker segments until a start-of-frame (SOFn) marker, which holds the size.
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) throw new ImageError('corrupt', 'The JPEG file is damaged: invalid marker structure.');
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image / start of scan: no frame header before it
    const len = u16be(b, p + 2);
    if (len < 2) throw new ImageError('corrupt', 'The JPEG file is damaged: invalid segment length.');
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 9 > b.length) throw truncatedHeader('JPEG');
      return [u16be(b, p + 7), u16be(b, p + 5)];
    }
    p += 2 + len;
  }
  if (p + 4 > b.length) throw truncatedHeader('JPEG');
  throw new ImageError('corrupt', 'The JPEG file is damaged: it has no frame header.');
}

function webpSize(b: Uint8Array): [number, number] {
  if (b.length < 30) throw truncatedHeader('WebP');
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') {
    // Lossy: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) {
      throw new ImageError('corrupt', 'The WebP file is damaged: bad VP8 start code.');
    }
    return [u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff];
  }
  if (chunk === 'VP8L') {
    // Lossless: signature 0x2f, then (width−1) and (height−1) in 14 bits each, LSB first.
    if (b[20] !== 0x2f) throw new ImageError('corrupt', 'The WebP file is damaged: bad VP8L signature.');
    const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
  }
  if (chunk === 'VP8X') {
    // Extended: flags and reserved (4 bytes), then canvas (width−1) and (height−1), 24 bits each.
    return [u24le(b, 24) + 1, u24le(b, 27) + 1];
  }
  throw new ImageError('corrupt', `The WebP file is damaged: unknown first chunk "${chunk}".`);
}

/**
 * Checks a file before decoding: not empty, a PNG/JPEG/WebP by its magic bytes, a readable
 * header, and at most MAX_PIXELS pixels. Throws ImageError with a user-facing message.
 */
export function inspectImage(bytes: Uint8Array, mime?: string): ImageHeader {
  if (bytes.length === 0) throw new ImageError('empty', 'The file is empty (0 bytes).');
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const other = otherImageFormat(bytes);
    if (other) {
      throw new ImageError(
        'unsupported-format',
        `${other} images are not supported; please use a JPEG, PNG or WebP file.`,
      );
    }
    const claimed = mime && mime.startsWith('image/') ? ` although it is labelled ${mime}` : '';
    throw new ImageError('not-an-image', `This file is not a JPEG, PNG or WebP image${claimed}.`);
  }
  const [width, height] = format === 'png' ? pngSize(bytes) : format === 'jpeg' ? jpegSize(bytes) : webpSize(bytes);
  if (width === 0 || height === 0) {
    throw new ImageError(
      'corrupt',
      `The ${format.toUpperCase()} file is damaged: its header gives a size of ${width}×${height}.`,
    );
  }
  checkPixelCount(width, height);
  return { format, width, height };
}

export function checkPixelCount(width: number, height: number): void {
  if (width * height > MAX_PIXELS) {
    throw new ImageError(
      'too-large',
      `The image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); ` +
        `the limit is ${MAX_PIXELS / 1e6} megapixels. Please use a smaller image.`,
    );
  }
}
