// Seeded random numbers that are bit-identical in Node and every browser, so a seed shown in
// the app reproduces the same image anywhere.
//
// Generator: Philox4x32-10 (Salmon et al. 2011, "Parallel Random Numbers: As Easy as 1, 2,
// 3"), a counter-based generator: block b of stream s under seed k is philox(counter =
// [b lo, b hi, s lo, s hi], key = [k lo, k hi]) → four uint32 words. Any element can be
// computed directly from its index, which suits per-image streams and GPU ports alike.
// Only integer ops (Math.imul, shifts, xor) and exact double products of 16-bit halves.
//
// Normals: Box–Muller, z₀ = √(−2 ln u₁)·cos 2πu₂, z₁ = √(−2 ln u₁)·sin 2πu₂, with u₁ ∈ (0, 1] and
// u₂ ∈ [0, 1) taken from two 32-bit words. Math.log / Math.cos (and **) are only
// "implementation-approximated" in ECMAScript and do differ between engines, so ln, sin and
// cos are evaluated here with + − × ÷, which IEEE 754 rounds identically everywhere, and
// Math.sqrt, which every engine compiles to the correctly rounded hardware instruction; the
// result is then rounded to float32.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO32 = 4294967296;

/** High 32 bits of the 64-bit product a·b of two uint32 (the low half is Math.imul). */
function mulHi(a: number, b: number): number {
  const aH = a >>> 16;
  const aL = a & 0xffff;
  const bH = b >>> 16;
  const bL = b & 0xffff;
  // a·b = aH·bH·2³² + (aH·bL + aL·bH)·2¹⁶ + aL·bL; each partial product is exact in a double.
  const mid = aH * bL + aL * bH + ((aL * bL) >>> 16);
  return (aH * bH + Math.floor(mid / 65536)) >>> 0;
}

/**
 * Philox4x32-10 of one 128-bit counter under a 64-bit key (uint32 words, low first).
 * Writes the four output words into `out`.
 */
export function philox4x32(
  counter: ArrayLike<number>,
  key: ArrayLike<number>,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulHi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulHi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

// ---------------------------------------------------------------------------------------
// Deterministic elementary functions on the ranges Box–Muller needs.

const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;
const PI_4 = 0.7853981633974483;
// 1/(2k+1) for the atanh series, 1/k! for the sin/cos series (evaluated once, exactly the
// same everywhere: IEEE division).
// 2^−e by repeated halving (exact), instead of the implementation-approximated `**`.
const INV_POW2 = (() => {
  const p = [1];
  for (let e = 1; e <= 32; e++) p.push(p[e - 1] * 0.5);
  return p;
})();
const ATANH_C = Array.from({ length: 14 }, (_, k) => 1 / (2 * k + 1));
const INV_FACT = (() => {
  const f = [1];
  for (let k = 1; k <= 19; k++) f.push(f[k - 1] / k);
  return f;
})();

/** ln(k/2³²) for an integer 1 ≤ k < 2³². */
function lnUnit(k: number): number {
  // k = m·2^e with m ∈ (√2/2, √2]; ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172. The
  // exponent is offset before scaling by ln 2 so that u near 1 loses nothing to cancellation.
  let e = 31 - Math.clz32(k);
  let m = k * INV_POW2[e];
  if (m > SQRT2) {
    m /= 2;
    e++;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let poly = ATANH_C[13];
  for (let i = 12; i >= 0; i--) poly = poly * s2 + ATANH_C[i];
  return 2 * s * poly + (e - 32) * LN2;
}

/** [cos x, sin x] for 0 ≤ x ≤ π/4 (Taylor series; the terms beyond x¹⁹ are < 1e-19). */
function cosSinSmall(x: number): [number, number] {
  const x2 = x * x;
  let c = INV_FACT[18];
  for (let k = 16; k >= 0; k -= 2) c = c * -x2 + INV_FACT[k];
  let s = INV_FACT[19];
  for (let k = 17; k >= 1; k -= 2) s = s * -x2 + INV_FACT[k];
  return [c, s * x];
}

/** [cos 2πw/2³², sin 2πw/2³²] for a uint32 w, reduced to the first octant by integer ops. */
function cosSinTurn(w: number): [number, number] {
  const octant = w >>> 29;
  const frac = (w & 0x1fffffff) / 536870912; // exact: 29 bits
  const odd = (octant & 1) === 1;
  const [c, s] = cosSinSmall((odd ? 1 - frac : frac) * PI_4);
  // Angle within the quadrant: φ for even octants, π/2 − φ for odd ones.
  const cq = odd ? s : c;
  const sq = odd ? c : s;
  switch (octant >>> 1) {
    case 0:
      return [cq, sq];
    case 1:
      return [-sq, cq];
    case 2:
      return [-cq, -sq];
    default:
      return [sq, -cq];
  }
}

/**
 * Box–Muller on two uint32 words, in double: u₁ = (w₀+1)/2³² ∈ (0, 1], u₂ = w₁/2³².
 * Returns [r·cos 2πu₂, r·sin 2πu₂] with r = √(−2 ln u₁).
 */
export function boxMuller(w0: number, w1: number): [number, number] {
  const k = (w0 >>> 0) + 1;
  const lnU1 = k === TWO32 ? 0 : lnUnit(k);
  const r = Math.sqrt(Math.max(0, -2 * lnU1));
  const [c, s] = cosSinTurn(w1 >>> 0);
  return [r * c, r * s];
}

/** A uint32 word as a float32-exact uniform in [0, 1) (its top 24 bits). */
export function wordToUniform(w: number): number {
  return (w >>> 8) / 16777216;
}

// ---------------------------------------------------------------------------------------

export interface RandomOptions {
  /** Independent stream under the same seed (e.g. 0 = initial latent, 1 = DDIM η noise). */
  stream?: number;
}

function splitU64(x: number, what: string): [number, number] {
  if (!Number.isSafeInteger(x) || x < 0) throw new Error(`${what} must be an integer in [0, 2^53), got ${x}`);
  return [(x % TWO32) >>> 0, Math.floor(x / TWO32) >>> 0];
}

/**
 * A seeded stream of Philox blocks. `uniforms` and `normals` each start at the next whole
 * block and consume whole blocks, so a sequence of calls is reproducible from the seed,
 * and `normals(n)` on a fresh generator equals `randomNormals(seed, n)`.
 */
export class PhiloxRandom {
  private readonly key: [number, number];
  private readonly stream: [number, number];
  /** Index of the next unused block. */
  private block = 0;
  private readonly words = new Uint32Array(4);
  private readonly counter = new Uint32Array(4);

  constructor(seed: number, options: RandomOptions = {}) {
    this.key = splitU64(seed, 'seed');
    this.stream = splitU64(options.stream ?? 0, 'stream');
  }

  /** The four words of block b (b < 2⁵³). */
  blockAt(b: number, out: Uint32Array = this.words): Uint32Array {
    const [lo, hi] = splitU64(b, 'block index');
    this.counter[0] = lo;
    this.counter[1] = hi;
    this.counter[2] = this.stream[0];
    this.counter[3] = this.stream[1];
    return philox4x32(this.counter, this.key, out);
  }

  /** n raw uint32 words. */
  uint32s(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i += 4) {
      const w = this.blockAt(this.block++);
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = w[j];
    }
    return out;
  }

  /** n uniforms in [0, 1), float32-exact (24-bit). */
  uniforms(n: number): Float32Array {
    const words = this.uint32s(n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = wordToUniform(words[i]);
    return out;
  }

  /** n standard normals, float32. Block b gives elements 4b … 4b+3: (cos, sin) of words (0,1) then (2,3). */
  normals(n: number, out: Float32Array = new Float32Array(n)): Float32Array {
    if (out.length < n) throw new Error(`normals: output holds ${out.length} < ${n} values`);
    for (let i = 0; i < n; i += 4) {
      const w = this.blockAt(this.block++);
      const [z0, z1] = boxMuller(w[0], w[1]);
      const [z2, z3] = boxMuller(w[2], w[3]);
      out[i] = z0;
      if (i + 1 < n) out[i + 1] = z1;
      if (i + 2 < n) out[i + 2] = z2;
      if (i + 3 < n) out[i + 3] = z3;
    }
    return out;
  }

  /** Skips to block b (random access). */
  seek(b: number): void {
    splitU64(b, 'block index');
    this.block = b;
  }
}

/** The first n standard normals (float32) of `seed`'s stream: the initial latent for a seed. */
export function randomNormals(seed: number, n: number, options: RandomOptions = {}): Float32Array {
  return new PhiloxRandom(seed, options).normals(n);
}
