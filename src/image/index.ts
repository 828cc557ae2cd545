// Browser-safe image API (decode-node.ts is separate because it imports node:zlib).
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
