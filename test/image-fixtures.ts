// Hostile images for tests, made from the real photos in ../shared/data/photos: a JPEG whose
// header claims another size, one with no scan, one with thousands of scans; PNGs of any
// shape from raw rows, with a chosen IDAT, without IEND or with a bad checksum.
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { chunk, concat, ihdr, SIGNATURE } from './png-test-encoder.ts';

const PHOTOS = new URL('../../shared/data/photos/', import.meta.url);
export const photoBytes = (name: string) => new Uint8Array(readFileSync(new URL(name, PHOTOS)));

interface Segment {
  marker: number;
  at: number;
  /** Offset just past the segment (for SOS: past its header, where entropy data starts). */
  end: number;
}

/** The marker segments of a JPEG up to and including the first SOS. */
export function jpegSegments(b: Uint8Array): Segment[] {
  const out: Segment[] = [];
  let p = 2;
  while (p + 4 <= b.length) {
    const marker = b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    out.push({ marker, at: p, end: p + 2 + len });
    if (marker === 0xda) break;
    p += 2 + len;
  }
  return out;
}

const EOI = Uint8Array.of(0xff, 0xd9);

/** `jpeg` with its frame header claiming `width` × `height`, cut to `keep` bytes of scan data, then EOI. */
export function jpegClaiming(jpeg: Uint8Array, width: number, height: number, keep = 100): Uint8Array {
  const sos = jpegSegments(jpeg).find((s) => s.marker === 0xda)!;
  const out = concat([jpeg.subarray(0, sos.end + keep), EOI]);
  const sof = jpegSegments(jpeg).find((s) => s.marker >= 0xc0 && s.marker <= 0xc2)!;
  out[sof.at + 5] = height >> 8;
  out[sof.at + 6] = height & 255;
  out[sof.at + 7] = width >> 8;
  out[sof.at + 8] = width & 255;
  return out;
}

/** `jpeg` with everything from its first scan on replaced by EOI: a frame and tables, no image data. */
export function jpegWithoutScan(jpeg: Uint8Array): Uint8Array {
  const sos = jpegSegments(jpeg).find((s) => s.marker === 0xda)!;
  return concat([jpeg.subarray(0, sos.at), EOI]);
}

/** `jpeg` with `extra` more (empty) scans of its first scan's header after the first scan's data. */
export function jpegWithScans(jpeg: Uint8Array, extra: number): Uint8Array {
  const sos = jpegSegments(jpeg).find((s) => s.marker === 0xda)!;
  const body = jpeg.subarray(0, jpeg.length - 2); // without EOI
  const header = jpeg.subarray(sos.at, sos.end);
  const one = concat([header, Uint8Array.of(0x00)]);
  const scans = new Uint8Array(one.length * extra);
  for (let i = 0; i < extra; i++) scans.set(one, i * one.length);
  return concat([body, scans, EOI]);
}

/** A PNG from filtered-row bytes (filter byte + samples per row) as one zlib stream. */
export function pngFromRaw(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
  raw: Uint8Array,
  options: { idat?: Uint8Array; iend?: boolean } = {},
): Uint8Array {
  const idat = options.idat ?? deflateSync(raw);
  return concat([
    SIGNATURE,
    ihdr(width, height, bitDepth, colorType),
    chunk('IDAT', idat),
    ...(options.iend === false ? [] : [chunk('IEND', new Uint8Array(0))]),
  ]);
}

/** A 4 × 4 grey PNG with the given IDAT payload. */
export function smallPngWithIdat(idat: Uint8Array): Uint8Array {
  return pngFromRaw(4, 4, 8, 0, new Uint8Array(0), { idat });
}

/** The offset of the first chunk of `type` in `png`. */
export function pngChunkAt(png: Uint8Array, type: string): number {
  let p = 8;
  while (p + 8 <= png.length) {
    const len = ((png[p] << 24) | (png[p + 1] << 16) | (png[p + 2] << 8) | png[p + 3]) >>> 0;
    if (String.fromCharCode(...png.subarray(p + 4, p + 8)) === type) return p;
    p += 12 + len;
  }
  return -1;
}
