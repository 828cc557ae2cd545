// A small deterministic zlib (RFC 1950/1951) compressor for PNG IDAT data. Node's zlib and the
// browser's CompressionStream are different zlib builds and need not give the same bytes, so a
// generated image saved by the CLI and by the app could differ; this encoder is plain
// TypeScript, the same everywhere: identical pixels give identical PNG bytes.
//
// Greedy LZ77 (3-byte hash chains over a 32 KiB window) coded with the fixed Huffman table
// (BTYPE 01), or stored blocks (BTYPE 00) when that would be smaller (noise-like pixels).

const WINDOW = 32768;
const MIN_MATCH = 3;
const MAX_MATCH = 258;
/** Candidates examined per position: a speed/size trade-off that is fixed, so output is too. */
const MAX_CHAIN = 32;
const HASH_BITS = 15;

// RFC 1951 §3.2.5: length codes 257..285 and distance codes 0..29 (base value, extra bits).
const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
  8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

function reverseBits(code: number, length: number): number {
  let r = 0;
  for (let i = 0; i < length; i++) r |= ((code >> i) & 1) << (length - 1 - i);
  return r;
}

// The fixed literal/length code (RFC 1951 §3.2.6), bit-reversed: Huffman codes go out MSB first
// while the bit stream is filled LSB first.
const LIT_CODE = new Uint16Array(288);
const LIT_LEN = new Uint8Array(288);
for (let v = 0; v < 288; v++) {
  const [code, len] =
    v < 144 ? [0x30 + v, 8] : v < 256 ? [0x190 + v - 144, 9] : v < 280 ? [v - 256, 7] : [0xc0 + v - 280, 8];
  LIT_CODE[v] = reverseBits(code, len);
  LIT_LEN[v] = len;
}
const DIST_CODE = Uint8Array.from({ length: 30 }, (_, d) => reverseBits(d, 5));

/** Length 3..258 → index into LENGTH_BASE; distance 1..32768 → distance code. */
const LENGTH_INDEX = new Uint8Array(MAX_MATCH + 1);
for (let i = 0; i < LENGTH_BASE.length; i++) {
  const end = i + 1 < LENGTH_BASE.length ? LENGTH_BASE[i + 1] : MAX_MATCH + 1;
  for (let l = LENGTH_BASE[i]; l < end; l++) LENGTH_INDEX[l] = i;
}
LENGTH_INDEX[MAX_MATCH] = 28;
function distIndex(d: number): number {
  let i = 29;
  while (DIST_BASE[i] > d) i--;
  return i;
}

class BitWriter {
  private buf: Uint8Array;
  private pos = 0;
  private bits = 0;
  private count = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(64, capacity));
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  /** `length` ≤ 24 bits of `value`, least significant first. */
  write(value: number, length: number): void {
    this.bits |= value << this.count;
    this.count += length;
    this.ensure(4);
    while (this.count >= 8) {
      this.buf[this.pos++] = this.bits & 0xff;
      this.bits >>>= 8;
      this.count -= 8;
    }
  }
  /** Pads to a byte boundary. */
  align(): void {
    if (this.count > 0) this.write(0, 8 - this.count);
  }
  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
  get length(): number {
    return this.pos + (this.count > 0 ? 1 : 0);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552: the most bytes before the sums can exceed 2^32 (zlib's NMAX).
  for (let i = 0; i < data.length;) {
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The fixed-Huffman LZ77 coding of all of `data` as one final block. */
function fixedBlock(data: Uint8Array, out: BitWriter): void {
  out.write(1, 1); // BFINAL
  out.write(1, 2); // BTYPE 01: fixed Huffman codes
  const n = data.length;
  const head = new Int32Array(1 << HASH_BITS).fill(-1);
  const prev = new Int32Array(WINDOW);
  const hashAt = (i: number) => ((data[i] << 10) ^ (data[i + 1] << 5) ^ data[i + 2]) & ((1 << HASH_BITS) - 1);
  const insert = (i: number) => {
    if (i + MIN_MATCH > n) return;
    const h = hashAt(i);
    prev[i & (WINDOW - 1)] = head[h];
    head[h] = i;
  };
  let i = 0;
  while (i < n) {
    let bestLen = 0;
    let bestDist = 0;
    if (i + MIN_MATCH <= n) {
      const limit = Math.min(MAX_MATCH, n - i);
      let cand = head[hashAt(i)];
      for (let chain = 0; chain < MAX_CHAIN && cand >= 0 && i - cand <= WINDOW; chain++) {
        if (data[cand + bestLen] === data[i + bestLen]) {
          let l = 0;
          while (l < limit && data[cand + l] === data[i + l]) l++;
          if (l > bestLen) {
            bestLen = l;
            bestDist = i - cand;
            if (l === limit) break;
          }
        }
        const p = prev[cand & (WINDOW - 1)];
        // Entries older than the window may have been overwritten by newer positions.
        if (p >= cand) break;
        cand = p;
      }
    }
    if (bestLen >= MIN_MATCH) {
      const li = LENGTH_INDEX[bestLen];
      out.write(LIT_CODE[257 + li], LIT_LEN[257 + li]);
      if (LENGTH_EXTRA[li]) out.write(bestLen - LENGTH_BASE[li], LENGTH_EXTRA[li]);
      const di = distIndex(bestDist);
      out.write(DIST_CODE[di], 5);
      if (DIST_EXTRA[di]) out.write(bestDist - DIST_BASE[di], DIST_EXTRA[di]);
      for (let k = 0; k < bestLen; k++) insert(i + k);
      i += bestLen;
    } else {
      out.write(LIT_CODE[data[i]], LIT_LEN[data[i]]);
      insert(i);
      i++;
    }
  }
  out.write(LIT_CODE[256], LIT_LEN[256]); // end of block
}

/** Stored blocks of at most 65535 bytes each. */
function storedBlocks(data: Uint8Array, out: BitWriter): void {
  let i = 0;
  do {
    const len = Math.min(65535, data.length - i);
    out.write(i + len >= data.length ? 1 : 0, 1);
    out.write(0, 2);
    out.align();
    out.write(len & 0xffff, 16);
    out.write(~len & 0xffff, 16);
    out.bytes(data.subarray(i, i + len));
    i += len;
  } while (i < data.length);
}

/** zlib-wrapped deflate of `data`; the same bytes on every platform. */
export function deflateDeterministic(data: Uint8Array): Uint8Array {
  const body = new BitWriter(data.length / 2 + 64);
  fixedBlock(data, body);
  body.align();
  let deflated = body.result();
  const storedSize = data.length + 5 * Math.max(1, Math.ceil(data.length / 65535));
  if (deflated.length > storedSize) {
    const stored = new BitWriter(storedSize + 8);
    storedBlocks(data, stored);
    deflated = stored.result();
  }
  const out = new Uint8Array(2 + deflated.length + 4);
  // CMF 0x78: deflate, 32 KiB window; FLG 0x01 makes (CMF·256 + FLG) a multiple of 31 (level bits 0).
  out[0] = 0x78;
  out[1] = 0x01;
  out.set(deflated, 2);
  new DataView(out.buffer).setUint32(2 + deflated.length, adler32(data));
  return out;
}
