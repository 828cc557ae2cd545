// torch's CPU normal generator, reproduced bit for bit so that a seed gives the same x_T as
// diffusers with `generator=torch.Generator('cpu').manual_seed(seed)`:
//   torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))
// Checked against the numbers torch 2.13 produced (shared/data/reference/torch-randn.json).
//
// What torch does (ATen CPUGeneratorImpl, DistributionTemplates.h, avx_mathfun.h):
// - Engine: the reference MT19937 (32-bit), seeded by Knuth's init_genrand with the low 32 bits
//   of the seed. random() is one draw; random64() is two draws, the first the high word.
// - n ≥ 16 float32 values (a latent): first one uniform per element, (random() & 0xFFFFFF)·2⁻²⁴;
//   then each whole block of 16 becomes normals in place by Box–Muller on the pairs (j, j+8):
//   u₁ = 1 − d[j], r = √(−2 ln u₁), θ = 2π·d[j+8], d[j] = r cos θ, d[j+8] = r sin θ, with ln,
//   sin and cos the Cephes float32 polynomials of avx_mathfun.h (not libm) as the shipped
//   AVX2 build compiles them: every multiply that feeds an add is fused (FMA), which changes
//   the last bit of some values, so fma32 below rounds once as the hardware does. When n is
//   not a multiple of 16, the LAST 16 elements are drawn again (fresh uniforms) and
//   transformed once more, overwriting values already made.
// - n < 16: one double-precision normal per element (at::normal_distribution<double>), each
//   pair from two 53-bit uniforms u₁, u₂: r = √(−2·log1p(−u₂)), θ = 2π·u₁, value r cos θ, and
//   r sin θ kept in the generator's cache for the next scalar draw (even in a later call),
//   each rounded to float32. Here ln/sin/cos are libm's in double; JavaScript's Math functions
//   may differ from glibc in the last bit of a double, which survives rounding to float32
//   only in the rare case of a value within 2⁻²⁹ relative of a float32 rounding boundary.
// Normals are returned as float32 (Float32Array), as torch's dtype=torch.float32 gives them.

const f = Math.fround;

// ------------------------------------------------------------------------------ MT19937

const N = 624;
const M = 397;

/** The reference 32-bit Mersenne Twister (Matsumoto & Nishimura 1998), as at::mt19937. */
export class Mt19937 {
  private readonly state = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    // torch's manual_seed takes a uint64 and keeps its low 32 bits for the state.
    const s = this.state;
    s[0] = lowWord(seed);
    for (let i = 1; i < N; i++) {
      const prev = s[i - 1] ^ (s[i - 1] >>> 30);
      s[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** One uint32 draw. */
  next(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < N; i++) {
      const y = (s[i] & 0x80000000) | (s[(i + 1) % N] & 0x7fffffff);
      s[i] = s[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }
}

function lowWord(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be an integer in [0, 2^53), got ${seed}`);
  return (seed % 4294967296) >>> 0;
}

// ------------------------------------------------------------------- float32 arithmetic

/** a·b + c rounded once to float32, as a fused multiply-add on float32 operands does. */
export function fma32(a: number, b: number, c: number): number {
  // a·b of two float32 is exact in a double (48 significant bits); the sum is rounded to
  // double with error e (TwoSum). Rounding that double to float32 is the correct single
  // rounding except when it sits exactly halfway between two float32: then e decides.
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const e = p - (s - bb) + (c - bb);
  const r = f(s);
  if (e === 0 || r === s) return r;
  const other = nextFloat32Toward(r, s);
  if (s - r !== other - s && r - s !== s - other) return r; // not a midpoint
  return e > 0 ? Math.max(r, other) : Math.min(r, other);
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The float32 next to r (a float32) in the direction of x (x ≠ r). */
function nextFloat32Toward(r: number, x: number): number {
  if (r === 0) return x > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45;
  scratch[0] = r;
  // Away from zero when x is further from zero than r, else towards it.
  scratchBits[0] += x > r === r > 0 ? 1 : -1;
  return scratch[0];
}

function bitsOf(x: number): number {
  scratch[0] = x;
  return scratchBits[0];
}

function fromBits(b: number): number {
  scratchBits[0] = b >>> 0;
  return scratch[0];
}

// ---------------------------------------------------- avx_mathfun.h (Cephes), one lane

const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LOG_Q1 = f(-2.1219444e-4);
const LOG_Q2 = f(0.693359375);
const SQRTHF = f(Math.SQRT1_2);
const MIN_NORM_POS = fromBits(0x00800000);

/** Natural log of a float32 in (0, 1], as log256_ps computes it (with FMA contraction). */
export function cephesLog(x0: number): number {
  // x = m·2^e with m ∈ [0.5, 1): exponent from the bits, mantissa forced into [0.5, 1).
  const bits = bitsOf(Math.max(x0, MIN_NORM_POS));
  let e = f((bits >>> 23) - 0x7f + 1);
  let x = fromBits((bits & ~0x7f800000) | 0x3f000000);
  // m < √½: use 2m − 1 and e − 1, else m − 1.
  const small = x < SQRTHF;
  const tmp = small ? x : 0;
  x = f(x - 1);
  if (small) e = f(e - 1);
  x = f(x + tmp);
  const z = f(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fma32(y, x, LOG_P[k]);
  y = f(y * x);
  y = fma32(y, z, f(e * LOG_Q1));
  y = fma32(z, -0.5, y);
  x = f(x + y);
  return fma32(e, LOG_Q2, x);
}

const FOPI = f(1.27323954473516);
const DP = [-0.78515625, -2.4187564849853515625e-4, -3.774894977445941e-8].map(f);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);

/** [sin θ, cos θ] of a float32 θ ≥ 0, as sincos256_ps computes them (with FMA contraction). */
export function cephesSinCos(theta: number): [number, number] {
  let x = Math.abs(theta);
  // Octant j (rounded up to even) of x·4/π, by truncation as cvttps does.
  const j = (Math.trunc(f(x * FOPI)) + 1) & ~1;
  const y = j;
  const sinSign = ((j & 4) !== 0) !== theta < 0;
  const cosSign = (~(j - 2) & 4) !== 0;
  const usePolySin = (j & 2) === 0;
  // Extended-precision reduction x − j·π/4 in three parts.
  for (const d of DP) x = fma32(y, d, x);
  const z = f(x * x);
  let yc = fma32(COS_P[0], z, COS_P[1]);
  yc = fma32(yc, z, COS_P[2]);
  yc = f(yc * z);
  yc = fma32(yc, z, -f(z * 0.5));
  yc = f(yc + 1);
  let ys = fma32(SIN_P[0], z, SIN_P[1]);
  ys = fma32(ys, z, SIN_P[2]);
  ys = f(ys * z);
  ys = fma32(ys, x, x);
  const s = usePolySin ? ys : yc;
  const c = usePolySin ? yc : ys;
  return [sinSign ? -s : s, cosSign ? -c : c];
}

const TWO_PI_F32 = f(2 * Math.PI);

/** torch's normal_fill_16_AVX2 on d[at … at+15] (uniforms in, normals out), mean 0, std 1. */
function normalFill16(d: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - d[at + j]);
    const u2 = d[at + j + 8];
    const radius = f(Math.sqrt(f(-2 * cephesLog(u1))));
    const [s, c] = cephesSinCos(f(TWO_PI_F32 * u2));
    d[at + j] = f(radius * c);
    d[at + j + 8] = f(radius * s);
  }
}

// --------------------------------------------------------------------------- generator

const TWO_POW_M24 = 1 / 16777216;
const TWO_POW_M53 = 1 / 9007199254740992;

/**
 * A torch CPU generator after `manual_seed(seed)`. Consecutive `randn` calls continue the
 * same stream, as consecutive torch.randn calls on one generator do.
 */
export class TorchGenerator {
  private readonly mt: Mt19937;
  /** The cached second value of the last scalar Box–Muller pair (torch's next_double_normal_sample). */
  private cachedNormal: number | null = null;

  constructor(seed: number) {
    this.mt = new Mt19937(seed);
  }

  /** uniform_real_distribution<float>(0, 1). */
  private uniform24(): number {
    return (this.mt.next() & 0xffffff) * TWO_POW_M24;
  }

  /** uniform_real_distribution<double>(0, 1): 53 bits of random64(), the first draw high. */
  private uniform53(): number {
    const hi = this.mt.next();
    const lo = this.mt.next();
    return ((hi & 0x1fffff) * 4294967296 + lo) * TWO_POW_M53;
  }

  /** at::normal_distribution<double>(0, 1) with the generator's one-value cache. */
  private normalDouble(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return v;
    }
    const u1 = this.uniform53();
    const u2 = this.uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** torch.randn(n values, dtype=float32) on this generator. */
  randn(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`randn: size must be a whole number, got ${n}`);
    const d = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) d[i] = this.normalDouble();
      return d;
    }
    for (let i = 0; i < n; i++) d[i] = this.uniform24();
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(d, i);
    if (n % 16 !== 0) {
      const at = n - 16;
      for (let i = 0; i < 16; i++) d[at + i] = this.uniform24();
      normalFill16(d, at);
    }
    return d;
  }
}

/** torch.randn(n values, generator=torch.Generator('cpu').manual_seed(seed)). */
export function torchRandn(seed: number, n: number): Float32Array {
  return new TorchGenerator(seed).randn(n);
}
