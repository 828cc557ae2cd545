// The one place that reads what kind of image a file is and how big it claims to be, from
// its first bytes, without decoding it — so a 20000 × 20000 PNG is refused before anything
// allocates 1.6 GB for its pixels — and whether the whole file holds together. The Photo
// step (ui/upload-validation.ts) uses readImageHeader and checkStructure; the decoders
// (decode-node.ts, decode-browser.ts) use inspectImage, the same reading turned into an
// ImageError; storage checks concept thumbnails with readImageHeader. Pure functions over
// bytes: the same code runs in Node tests.
//
// Formats: PNG (signature + IHDR, spec §5.2, §11.2.2), JPEG (marker segments up to the first
// SOFn, ITU T.81 §B.2), WebP (RIFF container; VP8X canvas size, VP8 key-frame header per
// RFC 6386 §9.1, VP8L header per the WebP lossless spec §3).
import { MAX_PIXELS, MAX_PNG_CHUNKS } from '../domain/limits.ts';
import { checkJpeg } from './jpeg-structure.ts';
import { crc32 } from './crc32.ts';
import { PNG_SIGNATURE, walkPngChunks } from './png-text.ts';
import { ImageError, type ImageFormat } from './types.ts';

export const IMAGE_MIME: Readonly<Record<ImageFormat, string>> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

/** How messages name each format. */
export const IMAGE_FORMAT_NAME: Readonly<Record<ImageFormat, string>> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP' };

export interface ImageHeader {
  format: ImageFormat;
  mime: string;
  width: number;
  height: number;
}

export type HeaderProblem =
  | { kind: 'empty' }
  /**
   * `detected` names what the bytes look like instead ("a GIF image", "text"), when
   * recognisable; `unsupported` is the short name ("GIF") when it is an image format we do not take.
   */
  | { kind: 'not-image'; detected: string | null; unsupported?: string }
  | { kind: 'truncated'; format: ImageFormat }
  | { kind: 'corrupt'; format: ImageFormat; detail: string }
  /** Only from a prefix: the header continues past `have` bytes; read up to `need` and ask again. */
  | { kind: 'need-more'; need: number };

export type HeaderResult = { ok: true; header: ImageHeader } | { ok: false; problem: HeaderProblem };

const fail = (problem: HeaderProblem): HeaderResult => ({ ok: false, problem });
const startsWith = (b: Uint8Array, sig: readonly number[] | Uint8Array, at = 0) =>
  b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);
const fourCC = (b: Uint8Array, at: number) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);

/** The supported format the magic bytes announce, or null. */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
  if (startsWith(b, PNG_SIGNATURE)) return 'png';
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (b.length >= 12 && fourCC(b, 0) === 'RIFF' && fourCC(b, 8) === 'WEBP') return 'webp';
  return null;
}

/** What a file that is not PNG/JPEG/WebP looks like: a phrase, and a format name if it is an image. */
interface OtherKind {
  phrase: string;
  image?: string;
}

function identifyOther(b: Uint8Array): OtherKind | null {
  if (b.length >= 6 && fourCC(b, 0) === 'GIF8') return { phrase: 'a GIF image', image: 'GIF' };
  if (b.length >= 12 && fourCC(b, 4) === 'ftyp') {
    const brand = fourCC(b, 8);
    if (brand.startsWith('avi')) return { phrase: 'an AVIF image', image: 'AVIF' };
    if (/^(hei|hev|mif1|msf1)/.test(brand)) return { phrase: 'a HEIC/HEIF photo', image: 'HEIC' };
    return { phrase: 'a video or ISO-media file' };
  }
  if (startsWith(b, [0x42, 0x4d]) && b.length >= 26) return { phrase: 'a BMP image', image: 'BMP' };
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { phrase: 'a TIFF image', image: 'TIFF' };
  }
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return { phrase: 'a JPEG XL image', image: 'JPEG XL' };
  }
  if (startsWith(b, [0x25, 0x50, 0x44, 0x46])) return { phrase: 'a PDF document' };
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04])) return { phrase: 'a ZIP archive' };
  if (startsWith(b, [0, 0, 1, 0])) return { phrase: 'an icon (ICO) file' };
  if (b.length >= 12 && fourCC(b, 0) === 'RIFF') return { phrase: 'a RIFF file that is not WebP' };
  if (looksLikeText(b)) {
    const head = new TextDecoder().decode(b.subarray(0, 256)).trimStart().toLowerCase();
    if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg')))
      return { phrase: 'an SVG drawing' };
    if (head.startsWith('<!doctype html') || head.startsWith('<html')) return { phrase: 'a web page (HTML)' };
    return { phrase: 'text' };
  }
  return null;
}

/** A friendly name for common files that are not PNG/JPEG/WebP, or null. */
export function describeOther(b: Uint8Array): string | null {
  return identifyOther(b)?.phrase ?? null;
}

function looksLikeText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  if (n === 0) return false;
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === 0) return false;
    if (c === 9 || c === 10 || c === 13 || (c >= 32 && c !== 127)) printable++;
  }
  return printable / n > 0.95;
}

/**
 * Format and claimed size. `bytes` may be a prefix of a file of `fileSize` bytes: when the
 * header lies past the prefix the answer is `need-more`; when it lies past the end of the
 * file it is `truncated`.
 */
export function readImageHeader(bytes: Uint8Array, fileSize = bytes.length): HeaderResult {
  if (fileSize === 0) return fail({ kind: 'empty' });
  const format = sniffFormat(bytes);
  if (!format) {
    // A file shorter than a signature that starts like one is an image cut off very early.
    if (bytes.length === fileSize && bytes.length < 12) {
      const partial = (sig: readonly number[] | Uint8Array) => bytes.every((x, i) => i >= sig.length || x === sig[i]);
      if (partial(PNG_SIGNATURE)) return fail({ kind: 'truncated', format: 'png' });
      if (partial([0xff, 0xd8, 0xff])) return fail({ kind: 'truncated', format: 'jpeg' });
      if (partial([0x52, 0x49, 0x46, 0x46])) return fail({ kind: 'truncated', format: 'webp' });
    }
    const other = identifyOther(bytes);
    if (other?.image) return fail({ kind: 'not-image', detected: other.phrase, unsupported: other.image });
    return fail({ kind: 'not-image', detected: other?.phrase ?? null });
  }
  const short = (need: number): HeaderResult =>
    need > fileSize ? fail({ kind: 'truncated', format }) : fail({ kind: 'need-more', need });
  switch (format) {
    case 'png':
      return pngHeader(bytes, short);
    case 'jpeg':
      return jpegHeader(bytes, short);
    case 'webp':
      return webpHeader(bytes, short);
  }
}

type Short = (need: number) => HeaderResult;
const ok = (format: ImageFormat, width: number, height: number): HeaderResult => ({
  ok: true,
  header: { format, mime: IMAGE_MIME[format], width, height },
});

function pngHeader(b: Uint8Array, short: Short): HeaderResult {
  // signature(8) · length(4)=13 · "IHDR" · width(4) height(4) depth colour compression filter interlace · CRC(4)
  if (b.length < 33) return short(33);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const corrupt = (detail: string) => fail({ kind: 'corrupt', format: 'png', detail });
  if (dv.getUint32(8) !== 13 || fourCC(b, 12) !== 'IHDR') return corrupt('the first chunk is not a valid IHDR');
  if (crc32(b, 12, 29) !== dv.getUint32(29)) return corrupt('the IHDR checksum does not match');
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    return corrupt(`the header gives an impossible size ${width} × ${height}`);
  }
  const depth = b[24];
  const colour = b[25];
  const allowed: Record<number, number[]> = {
    0: [1, 2, 4, 8, 16],
    2: [8, 16],
    3: [1, 2, 4, 8],
    4: [8, 16],
    6: [8, 16],
  };
  if (!allowed[colour]?.includes(depth))
    return corrupt(`colour type ${colour} with bit depth ${depth} is not valid PNG`);
  if (b[26] !== 0 || b[27] !== 0 || b[28] > 1) return corrupt('unknown compression, filter or interlace method');
  return ok('png', width, height);
}

// SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

function jpegHeader(b: Uint8Array, short: Short): HeaderResult {
  const corrupt = (detail: string) => fail({ kind: 'corrupt', format: 'jpeg', detail });
  let at = 2;
  for (;;) {
    if (at + 2 > b.length) return short(at + 2);
    if (b[at] !== 0xff) return corrupt(`expected a marker at byte ${at}`);
    const m = b[at + 1];
    if (m === 0xff) {
      at++; // fill byte before a marker
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    if (m === 0xd9 || m === 0xda) return corrupt('the image data starts before any frame header (no SOF)');
    if (at + 4 > b.length) return short(at + 4);
    const len = (b[at + 2] << 8) | b[at + 3];
    if (len < 2) return corrupt(`segment at byte ${at} has an impossible length`);
    if (isSof(m)) {
      if (at + 9 > b.length) return short(at + 9);
      const height = (b[at + 5] << 8) | b[at + 6];
      const width = (b[at + 7] << 8) | b[at + 8];
      // Height 0 defers to a DNL marker, which browsers do not support either.
      if (width === 0 || height === 0) return corrupt(`the frame header gives an impossible size ${width} × ${height}`);
      return ok('jpeg', width, height);
    }
    at += 2 + len;
  }
}

function webpHeader(b: Uint8Array, short: Short): HeaderResult {
  const corrupt = (detail: string) => fail({ kind: 'corrupt', format: 'webp', detail });
  if (b.length < 30) return short(30);
  const chunk = fourCC(b, 12);
  if (chunk === 'VP8X') {
    // flags(1) reserved(3) canvas width−1 (24-bit LE) canvas height−1 (24-bit LE)
    const width = 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
    const height = 1 + (b[27] | (b[28] << 8) | (b[29] << 16));
    return ok('webp', width, height);
  }
  if (chunk === 'VP8 ') {
    // frame tag (3) · start code 9d 01 2a · width (14 bits + 2 scale) · height (14 + 2), little-endian
    if (!startsWith(b, [0x9d, 0x01, 0x2a], 23)) return corrupt('the VP8 key-frame start code is missing');
    const width = (b[26] | (b[27] << 8)) & 0x3fff;
    const height = (b[28] | (b[29] << 8)) & 0x3fff;
    if (width === 0 || height === 0) return corrupt(`the frame header gives an impossible size ${width} × ${height}`);
    return ok('webp', width, height);
  }
  if (chunk === 'VP8L') {
    // signature 0x2f · 14 bits width−1 · 14 bits height−1 · alpha · 3-bit version
    if (b[20] !== 0x2f) return corrupt('the VP8L signature byte is missing');
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    const width = 1 + (bits & 0x3fff);
    const height = 1 + ((bits >>> 14) & 0x3fff);
    if (bits >>> 29 !== 0) return corrupt('unknown VP8L version');
    return ok('webp', width, height);
  }
  return corrupt(`unknown first chunk ${JSON.stringify(chunk)}`);
}

export type StructureProblem = { kind: 'truncated' } | { kind: 'corrupt'; detail: string };

/**
 * Whether the whole file holds together (needs all its bytes): the PNG chunk list reaches
 * IEND with image data before it, a JPEG's scan data ends in EOI, a WebP's RIFF size fits
 * the file. Browsers decode a cut-off image without complaint, greying out what is
 * missing; this is what tells the user their copy is incomplete.
 */
export function checkStructure(b: Uint8Array, format: ImageFormat): StructureProblem | null {
  switch (format) {
    case 'png': {
      let chunks = 0;
      let sawData = false;
      for (const step of walkPngChunks(b)) {
        if (step.kind === 'cut') return { kind: 'truncated' };
        if (chunks++ >= MAX_PNG_CHUNKS) return { kind: 'corrupt', detail: `it has more than ${MAX_PNG_CHUNKS} chunks` };
        const { type, offset } = step;
        // The browser decodes image data with a bad checksum without a word; the Node decoder
        // and personalization refuse it, so the Photo step does too.
        if (!step.crcOk) {
          return {
            kind: 'corrupt',
            detail: `the checksum of its ${JSON.stringify(type)} chunk at byte ${offset} does not match`,
          };
        }
        if (type === 'IDAT') sawData = true;
        if (type === 'IEND') return sawData ? null : { kind: 'corrupt', detail: 'the file has no image data (IDAT)' };
      }
      return { kind: 'truncated' }; // the bytes end before IEND
    }
    case 'jpeg': {
      // The same walk the Node decoder makes (image/jpeg-structure.ts): a frame, at
      // least one scan, EOI, a bounded number of scans and enough data for the claimed size.
      const check = checkJpeg(b);
      if (check.ok) return null;
      return check.kind === 'truncated' ? { kind: 'truncated' } : { kind: 'corrupt', detail: check.detail };
    }
    case 'webp': {
      const riff = b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24);
      return (riff >>> 0) + 8 > b.length ? { kind: 'truncated' } : null;
    }
  }
}

/** Refuses more than MAX_PIXELS (domain/limits.ts) before any pixel is decoded. */
export function checkPixelCount(width: number, height: number): void {
  if (width * height > MAX_PIXELS) {
    throw new ImageError(
      'too-large',
      `The image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); ` +
        `the limit is ${MAX_PIXELS / 1e6} megapixels. Please use a smaller image.`,
    );
  }
}

/**
 * readImageHeader over a whole file, for the decoders: the header, or an ImageError with a
 * message for the person who picked the file (`mime`, from the File/Blob, only improves it).
 * Also refuses more than MAX_PIXELS.
 */
export function inspectImage(bytes: Uint8Array, mime?: string): ImageHeader {
  const r = readImageHeader(bytes);
  if (!r.ok) throw headerError(r.problem, mime);
  checkPixelCount(r.header.width, r.header.height);
  return r.header;
}

function headerError(p: HeaderProblem, mime: string | undefined): ImageError {
  switch (p.kind) {
    case 'empty':
      return new ImageError('empty', 'The file is empty (0 bytes).');
    case 'not-image': {
      if (p.unsupported) {
        return new ImageError(
          'unsupported-format',
          `${p.unsupported} images are not supported; please use a JPEG, PNG or WebP file.`,
        );
      }
      const claimed = mime && mime.startsWith('image/') ? ` although it is labelled ${mime}` : '';
      const looks = p.detected ? ` (it looks like ${p.detected})` : '';
      return new ImageError('not-an-image', `This file is not a JPEG, PNG or WebP image${claimed}${looks}.`);
    }
    case 'truncated':
      return new ImageError(
        'truncated',
        `The ${IMAGE_FORMAT_NAME[p.format]} file ends before its header is complete; it is truncated or damaged.`,
      );
    case 'corrupt':
      return new ImageError('corrupt', `The ${IMAGE_FORMAT_NAME[p.format]} file is damaged: ${p.detail}.`);
    case 'need-more':
      // readImageHeader over a whole file never asks for more: any shortfall is truncation.
      throw new Error(`inspectImage: the header reader asked for ${p.need} bytes of a whole file`);
  }
}
