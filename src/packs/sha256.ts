// Incremental SHA-256 (FIPS 180-4). Browsers' crypto.subtle.digest only hashes a whole
// buffer at once, but packs arrive in chunks and are hundreds of MB: hashing as the bytes
// arrive means no second pass and no second copy.

// Int32Array, not Uint32Array: values ≥ 2^31 read from a Uint32Array become doubles in V8,
// which makes every round's arithmetic several times slower.
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

export class Sha256 {
  private readonly h = new Int32Array(H0);
  private readonly w = new Int32Array(64);
  /** Bytes of an incomplete block carried to the next update. */
  private readonly pending = new Uint8Array(64);
  private pendingLength = 0;
  /** Total bytes hashed (exact up to 2^53, i.e. 8 PiB). */
  private length = 0;
  private finished = false;

  update(chunk: Uint8Array): this {
    if (this.finished) throw new Error('Sha256: update() after digest()');
    this.length += chunk.length;
    let i = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(64 - this.pendingLength, chunk.length);
      this.pending.set(chunk.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      i = take;
      if (this.pendingLength < 64) return this;
      this.block(this.pending, 0);
      this.pendingLength = 0;
    }
    // Whole blocks straight from the input, no copy.
    for (; i + 64 <= chunk.length; i += 64) this.block(chunk, i);
    if (i < chunk.length) {
      this.pending.set(chunk.subarray(i), 0);
      this.pendingLength = chunk.length - i;
    }
    return this;
  }

  /** The 32-byte digest. The hasher cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.finished) throw new Error('Sha256: digest() called twice');
    const bitsHi = Math.floor(this.length / 2 ** 29);
    const bitsLo = (this.length * 8) >>> 0;
    // Padding: 0x80, zeros to 56 mod 64, then the 64-bit big-endian bit length.
    const padLength = (this.pendingLength < 56 ? 56 : 120) - this.pendingLength;
    const tail = new Uint8Array(padLength + 8);
    tail[0] = 0x80;
    const dv = new DataView(tail.buffer);
    dv.setUint32(padLength, bitsHi, false);
    dv.setUint32(padLength + 4, bitsLo, false);
    const length = this.length;
    this.update(tail);
    this.length = length;
    this.finished = true;
    const out = new Uint8Array(32);
    const odv = new DataView(out.buffer);
    for (let j = 0; j < 8; j++) odv.setInt32(4 * j, this.h[j], false);
    return out;
  }

  hex(): string {
    return toHex(this.digest());
  }

  /** Bytes hashed so far. */
  get bytesHashed(): number {
    return this.length;
  }

  private block(src: Uint8Array, at: number): void {
    const w = this.w;
    for (let t = 0; t < 16; t++) {
      const j = at + 4 * t;
      w[t] = (src[j] << 24) | (src[j + 1] << 16) | (src[j + 2] << 8) | src[j + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0],
      b = h[1],
      c = h[2],
      d = h[3],
      e = h[4],
      f = h[5],
      g = h[6],
      hh = h[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + hh) | 0;
  }
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** One-shot SHA-256 as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return new Sha256().update(bytes).hex();
}
