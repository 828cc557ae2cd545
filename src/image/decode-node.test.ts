import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createNodeImageDecoder, decodeImage } from './decode-node.ts';
import { concat, encodeTestPng, ihdr, SIGNATURE } from '../../test/png-test-encoder.ts';
import { inspectImage } from './image-header.ts';
import { ImageError, type ImageErrorCode } from './types.ts';

const PHOTOS = new URL('../../../shared/data/photos/', import.meta.url);
const photo = (name: string) => new Uint8Array(readFileSync(new URL(name, PHOTOS)));

// Reference values from Chromium's own decoder (createImageBitmap + OffscreenCanvas
// getImageData, colorSpaceConversion 'none' and 'default' agree for these files): size,
// per-channel sums over the whole image, and four RGBA pixels.
const CHROMIUM: Record<string, { w: number; h: number; sums: number[]; pixels: [number, number, number[]][] }> = {
  'chelsea.png': {
    w: 451,
    h: 300,
    sums: [19980169, 15078438, 11743750, 34501500],
    pixels: [
      [0, 0, [143, 120, 104, 255]],
      [450, 299, [162, 138, 128, 255]],
      [225, 150, [190, 150, 124, 255]],
      [17, 123, [114, 80, 53, 255]],
    ],
  },
  'astronaut.png': {
    w: 512,
    h: 512,
    sums: [37109758, 27724204, 25290362, 66846720],
    pixels: [
      [0, 0, [154, 147, 151, 255]],
      [511, 511, [0, 0, 0, 255]],
      [256, 256, [19, 14, 7, 255]],
      [17, 123, [29, 9, 64, 255]],
    ],
  },
  'coffee.png': {
    w: 600,
    h: 400,
    sums: [38056581, 20590566, 12356340, 61200000],
    pixels: [
      [0, 0, [21, 13, 8, 255]],
      [599, 399, [143, 60, 29, 255]],
      [300, 200, [248, 250, 255, 255]],
      [17, 123, [200, 121, 61, 255]],
    ],
  },
};

async function errorCode(p: Promise<unknown>): Promise<ImageErrorCode | 'decoded'> {
  try {
    await p;
    return 'decoded';
  } catch (e) {
    expect(e).toBeInstanceOf(ImageError);
    return (e as ImageError).code;
  }
}

describe('decodeImage (Node)', () => {
  it.each(Object.entries(CHROMIUM))('decodes %s exactly as Chromium does', async (name, ref) => {
    const img = await decodeImage(photo(name), 'image/png');
    expect([img.width, img.height]).toEqual([ref.w, ref.h]);
    const sums = [0, 0, 0, 0];
    img.data.forEach((v, i) => (sums[i % 4] += v));
    expect(sums).toEqual(ref.sums);
    for (const [x, y, rgba] of ref.pixels) {
      expect([x, y, ...img.data.subarray((y * ref.w + x) * 4, (y * ref.w + x) * 4 + 4)]).toEqual([x, y, ...rgba]);
    }
  });

  it('reads JPEG and PNG sizes from the header', () => {
    const jpeg = { format: 'jpeg', mime: 'image/jpeg' };
    expect(inspectImage(photo('grace_hopper.jpg'))).toEqual({ ...jpeg, width: 512, height: 600 });
    expect(inspectImage(photo('rocket.jpg'))).toEqual({ ...jpeg, width: 640, height: 427 });
    expect(inspectImage(photo('chelsea.png'))).toEqual({ format: 'png', mime: 'image/png', width: 451, height: 300 });
  });

  it('decodes the real JPEG photos (jpeg-js), refuses a truncated one, and checks plugged-in decoders', async () => {
    const rocket = await decodeImage(photo('rocket.jpg'));
    expect([rocket.width, rocket.height]).toEqual([640, 427]);
    const hopper = await decodeImage(photo('grace_hopper.jpg'));
    expect([hopper.width, hopper.height]).toEqual([512, 600]);
    // A portrait in uniform: not a flat image.
    let lo = 255;
    let hi = 0;
    for (let i = 0; i < hopper.data.length; i += 4) {
      lo = Math.min(lo, hopper.data[i]);
      hi = Math.max(hi, hopper.data[i]);
    }
    expect(hi - lo).toBeGreaterThan(200);
    const cut = photo('rocket.jpg').subarray(0, 5000);
    await expect(decodeImage(cut)).rejects.toThrow(/damaged or truncated|could not be decoded/);
    const fake = createNodeImageDecoder({
      jpeg: () => ({ width: 640, height: 427, data: new Uint8ClampedArray(640 * 427 * 4) }),
    });
    expect((await fake.decode(photo('rocket.jpg'))).width).toBe(640);
    const wrongSize = createNodeImageDecoder({ jpeg: () => ({ width: 1, height: 1, data: new Uint8ClampedArray(4) }) });
    expect(await errorCode(wrongSize.decode(photo('rocket.jpg')))).toBe('corrupt');
    const throwing = createNodeImageDecoder({
      jpeg: () => {
        throw new Error('bad huffman code');
      },
    });
    await expect(throwing.decode(photo('rocket.jpg'))).rejects.toThrow(/could not be decoded/);
  });

  it('refuses a zero-byte file', async () => {
    expect(await errorCode(decodeImage(new Uint8Array(0), 'image/png'))).toBe('empty');
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow('The file is empty (0 bytes).');
  });

  it('refuses a text file renamed .png', async () => {
    const text = new TextEncoder().encode('just some notes, not a picture\n');
    expect(await errorCode(decodeImage(text, 'image/png'))).toBe('not-an-image');
    await expect(decodeImage(text, 'image/png')).rejects.toThrow(
      /not a JPEG, PNG or WebP image although it is labelled image\/png/,
    );
  });

  it('names other image formats it does not take', async () => {
    await expect(decodeImage(new TextEncoder().encode('GIF89a\x01\x00\x01\x00'))).rejects.toThrow(
      /GIF images are not supported/,
    );
    const heic = Uint8Array.from([0, 0, 0, 24, ...new TextEncoder().encode('ftypheic'), 0, 0, 0, 0]);
    expect(await errorCode(decodeImage(heic))).toBe('unsupported-format');
  });

  it('refuses truncated photos', async () => {
    const bytes = photo('chelsea.png');
    // Even 4 bytes: a file shorter than a signature that starts like one is a cut-off image,
    // as the Photo step says (one header reader, image-header.ts, answers for both).
    for (const n of [4, 20, 40, 5000, bytes.length >> 1, bytes.length - 20]) {
      expect([n, await errorCode(decodeImage(bytes.subarray(0, n)))]).toEqual([n, 'truncated']);
    }
    expect(await errorCode(decodeImage(photo('rocket.jpg').subarray(0, 10)))).toBe('truncated');
  });

  it('refuses a corrupted photo (CRC)', async () => {
    const bytes = photo('coffee.png').slice();
    bytes[bytes.length >> 1] ^= 1;
    expect(await errorCode(decodeImage(bytes))).toBe('corrupt');
  });

  it('refuses a PNG header claiming 10000×5000 before decoding', async () => {
    const huge = concat([SIGNATURE, ihdr(10000, 5000, 8, 6)]);
    expect(await errorCode(decodeImage(huge))).toBe('too-large');
    // 40 MP exactly is allowed by the size check (it then fails only because there is no data).
    expect(await errorCode(decodeImage(concat([SIGNATURE, ihdr(8000, 5000, 8, 6)])))).toBe('truncated');
  });

  it('refuses gigantic JPEG and WebP headers too', () => {
    // A minimal JPEG header: SOI, then SOF0 with height 7000 and width 7000.
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0x1b, 0x58, 0x1b, 0x58, 3);
    expect(() => inspectImage(jpeg)).toThrow(/7000×7000 \(49\.0 megapixels\)/);
    // WebP VP8X canvas 16384×16384.
    const webp = new Uint8Array(30);
    webp.set(new TextEncoder().encode('RIFF'), 0);
    webp.set(new TextEncoder().encode('WEBPVP8X'), 8);
    webp.set([0xff, 0x3f, 0x00, 0xff, 0x3f, 0x00], 24);
    expect(() => inspectImage(webp)).toThrow(ImageError);
    expect(() => inspectImage(webp)).toThrow(/16384×16384/);
  });

  it('applies an eXIf orientation (6: rotate 90° clockwise)', async () => {
    // 3×2 RGB image, pixel value = index; EXIF (big-endian TIFF) with Orientation = 6.
    const samples = Array.from({ length: 6 }, (_, i) => [i * 10, 0, 0]).flat();
    const tiff = Uint8Array.of(
      0x4d,
      0x4d,
      0,
      42,
      0,
      0,
      0,
      8,
      0,
      1,
      0x01,
      0x12,
      0,
      3,
      0,
      0,
      0,
      1,
      0,
      6,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    );
    const png = encodeTestPng({
      width: 3,
      height: 2,
      colorType: 2,
      bitDepth: 8,
      samples,
      extraChunks: [{ type: 'eXIf', data: tiff }],
    });
    const img = await decodeImage(png);
    expect([img.width, img.height]).toEqual([2, 3]);
    // Rotated clockwise: the bottom-left source pixel (index 3) becomes the top-left one.
    expect(Array.from({ length: 6 }, (_, i) => img.data[i * 4] / 10)).toEqual([3, 0, 4, 1, 5, 2]);
  });
});
