// Browser-safe image API (decode-node.ts is separate because it imports node:zlib).
// Each concern has one file:
//   types.ts           RgbaImage, ImageFormat, ImageError
//   image-header.ts    format sniffing, header size, whole-file structure, inspectImage
//   crc32.ts           the CRC-32 (PNG chunks, ZIP entries)
//   png-text.ts        PNG signature, chunk writer and walker, tEXt/iTXt write and read
//   png-encode.ts      RGBA8 → PNG (chunks from png-text.ts)
//   png.ts             PNG → RGBA8
//   jpeg-structure.ts  JPEG segments and scans, read without decoding
//   exif.ts            EXIF orientation
//   transform.ts       crop (PixelRect; the user's square is domain CropRect), resample
//   pixels.ts          RGBA8 → model input tensors
//   decode-browser.ts  decoding with the browser's codecs; decode-node.ts the Node one
export * from './types.ts';
export {
  checkPixelCount,
  checkStructure,
  describeOther,
  IMAGE_FORMAT_NAME,
  IMAGE_MIME,
  inspectImage,
  readImageHeader,
  sniffFormat,
  type HeaderProblem,
  type ImageHeader,
} from './image-header.ts';
export { crc32 } from './crc32.ts';
export {
  insertPngText,
  listPngChunks,
  PNG_SIGNATURE,
  pngChunk,
  PngFormatError,
  readPngText,
  textChunk,
  walkPngChunks,
  type PngChunkInfo,
  type PngChunkStep,
  type PngTextEntry,
} from './png-text.ts';
export { encodePng, type Deflate } from './png-encode.ts';
export { checkJpeg, readJpegStructure, type JpegCheck, type JpegStructure } from './jpeg-structure.ts';
export { decodePng, readPngInfo, type Inflate, type PngInfo } from './png.ts';
export { applyOrientation, jpegOrientation, tiffOrientation } from './exif.ts';
export {
  centerSquare,
  cropRect,
  flattenAlpha,
  resize,
  resizeAndCenterCrop,
  shortestEdgeSize,
  squareRect,
  type PixelRect,
  type ResampleFilter,
} from './transform.ts';
export { CLIP_MEAN, CLIP_STD, toClipPixels, toVaePixels } from './pixels.ts';
export { decodeImageBrowser } from './decode-browser.ts';
