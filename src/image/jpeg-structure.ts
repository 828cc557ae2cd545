// A JPEG's segment structure (ITU T.81 §B.2) read without decoding: the frame header, how
// many scans there are and how many bytes of entropy-coded data they hold. Cheap (one pass
// over the bytes, no allocation) so that the Node decoder and the browser's Photo step can
// refuse files that would make a decoder allocate or loop for long before it finds out
// anything is wrong: no scan at all, thousands of scans, or far too little data for the
// size the header claims.
import { MAX_JPEG_SCAN_BLOCKS, MAX_JPEG_SCANS } from '../domain/limits.ts';

export interface JpegStructure {
  width: number;
  height: number;
  /** Id and sampling factors per component. */
  components: { id: number; h: number; v: number }[];
  progressive: boolean;
  scans: number;
  /** Blocks decoded over all scans (each scan's components' blocks): the decoder's work. */
  scanBlocks: number;
  /** Bytes of entropy-coded data over all scans (markers and stuffing included). */
  entropyBytes: number;
  /** An EOI marker was found after the last scan. */
  complete: boolean;
}

export type JpegStructureProblem =
  | { kind: 'truncated'; detail: string }
  | { kind: 'corrupt'; detail: string }
  | { kind: 'too-many-scans'; scans: number };

/** 8×8 blocks the frame's components hold (what every scan's DC data must cover). */
export function jpegBlocks(s: Pick<JpegStructure, 'width' | 'height' | 'components'>): number {
  return s.components.reduce((n, c) => n + componentBlocks(s, c), 0);
}

function componentBlocks(
  s: Pick<JpegStructure, 'width' | 'height' | 'components'>,
  c: { h: number; v: number },
): number {
  const hMax = Math.max(...s.components.map((x) => x.h));
  const vMax = Math.max(...s.components.map((x) => x.v));
  return Math.ceil(Math.ceil((s.width * c.h) / hMax) / 8) * Math.ceil(Math.ceil((s.height * c.v) / vMax) / 8);
}

/**
 * The structure of a JPEG file, or what is wrong with it. Stops counting at
 * MAX_JPEG_SCANS + 1 scans. A file must have a frame header and at least one scan; a
 * missing EOI is reported by `complete`, not refused (browsers show a cut-off JPEG).
 */
export function readJpegStructure(b: Uint8Array): JpegStructure | JpegStructureProblem {
  let frame: Omit<JpegStructure, 'scans' | 'scanBlocks' | 'entropyBytes' | 'complete'> | null = null;
  let scans = 0;
  let scanBlocks = 0;
  let entropyBytes = 0;
  let p = 2;
  for (;;) {
    if (p + 2 > b.length) break;
    if (b[p] !== 0xff) return { kind: 'corrupt', detail: `expected a marker at byte ${p}` };
    const m = b[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0xd9) {
      if (!frame) return { kind: 'corrupt', detail: 'it has no frame header' };
      if (scans === 0) return { kind: 'corrupt', detail: 'it has no image data (no scan)' };
      return { ...frame, scans, scanBlocks, entropyBytes, complete: true };
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p += 2;
      continue;
    }
    if (p + 4 > b.length) break;
    const len = (b[p + 2] << 8) | b[p + 3];
    if (len < 2) return { kind: 'corrupt', detail: `a segment at byte ${p} has length ${len}` };
    if (p + 2 + len > b.length) break;
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (frame) return { kind: 'corrupt', detail: 'it has two frame headers' };
      const n = b[p + 9];
      if (len < 8 + 3 * n || n === 0) return { kind: 'corrupt', detail: 'its frame header is malformed' };
      const components: { id: number; h: number; v: number }[] = [];
      for (let i = 0; i < n; i++) {
        const id = b[p + 10 + 3 * i];
        const hv = b[p + 11 + 3 * i];
        const h = hv >> 4;
        const v = hv & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4)
          return { kind: 'corrupt', detail: 'a component has invalid sampling factors' };
        components.push({ id, h, v });
      }
      frame = {
        height: (b[p + 5] << 8) | b[p + 6],
        width: (b[p + 7] << 8) | b[p + 8],
        components,
        progressive: m === 0xc2 || m === 0xc6 || m === 0xca || m === 0xce,
      };
    }
    p += 2 + len;
    if (m === 0xda) {
      if (!frame) return { kind: 'corrupt', detail: 'a scan comes before the frame header' };
      if (++scans > MAX_JPEG_SCANS) return { kind: 'too-many-scans', scans };
      const f = frame;
      const selected = b[p - len + 2];
      for (let i = 0; i < selected && 3 + 2 * i < len; i++) {
        const c = f.components.find((x) => x.id === b[p - len + 3 + 2 * i]);
        if (c) scanBlocks += componentBlocks(f, c);
      }
      // Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a restart marker inside it;
      // anything else is the next marker.
      const start = p;
      while (p + 1 < b.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && !(b[p + 1] >= 0xd0 && b[p + 1] <= 0xd7))) p++;
      if (p + 1 >= b.length) p = b.length;
      entropyBytes += p - start;
    }
  }
  // The file ended before EOI.
  if (!frame) return { kind: 'truncated', detail: 'it ends before its frame header' };
  if (scans === 0) return { kind: 'truncated', detail: 'it ends before its image data' };
  return { ...frame, scans, scanBlocks, entropyBytes, complete: false };
}

/**
 * Whether the scans can hold the image the header claims: every block's DC coefficient takes
 * at least one bit, so fewer than blocks / 8 bytes of scan data cannot be a whole image
 * (a 167-byte file claiming 6500 × 6150 pixels). Decoders fill what is missing with grey.
 */
export function jpegDataTooShort(s: JpegStructure): boolean {
  return s.entropyBytes * 8 < jpegBlocks(s);
}

export type JpegCheck =
  { ok: true; structure: JpegStructure } | { ok: false; kind: 'truncated' | 'corrupt' | 'too-large'; detail: string };

/**
 * What the Photo step (browser) and the Node decoder both require of a JPEG before it is
 * decoded: a frame, at least one scan and EOI, at most MAX_JPEG_SCANS scans and
 * MAX_JPEG_SCAN_BLOCKS blocks of decoding work, and enough data for the size it claims.
 */
export function checkJpeg(b: Uint8Array): JpegCheck {
  const s = readJpegStructure(b);
  if ('kind' in s) {
    if (s.kind === 'too-many-scans') {
      return {
        ok: false,
        kind: 'too-large',
        detail: `it has more than ${MAX_JPEG_SCANS} scans (progressive passes), which would take minutes to decode; save it again as a normal JPEG`,
      };
    }
    return { ok: false, kind: s.kind, detail: s.detail };
  }
  if (s.scanBlocks > MAX_JPEG_SCAN_BLOCKS) {
    return {
      ok: false,
      kind: 'too-large',
      detail: `its ${s.scans} scans make ${s.scanBlocks} blocks to decode, more than ${MAX_JPEG_SCAN_BLOCKS}; save it again as a normal (baseline) JPEG or make it smaller`,
    };
  }
  if (jpegDataTooShort(s)) {
    return {
      ok: false,
      kind: 'truncated',
      detail: `it holds ${s.entropyBytes} bytes of image data, too few for the ${s.width} × ${s.height} pixels its header claims`,
    };
  }
  if (!s.complete) return { ok: false, kind: 'truncated', detail: 'it ends before its end-of-image marker' };
  return { ok: true, structure: s };
}
