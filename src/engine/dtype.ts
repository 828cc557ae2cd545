// Element types the engine stores. fp32 everywhere; fp16 only where the adapter has
// `shader-f16` and a kernel opts in (matmul, attention).
export type DType = 'f32' | 'f16';

export const bytesPerElement = (dtype: DType): number => (dtype === 'f32' ? 4 : 2);

// WGSL's scalar name for a dtype, for kernels generated per dtype.
export const wgslType = (dtype: DType): string => dtype;

const f32View = new Float32Array(1);
const u32View = new Uint32Array(f32View.buffer);

/** Round-to-nearest-even float32 → IEEE binary16 bits. */
export function f32ToF16Bits(value: number): number {
  f32View[0] = value;
  const x = u32View[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // subnormal: make the implicit bit explicit, then shift
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // may carry into exponent: correct
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toF16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

export function fromF16Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]);
  return out;
}

/** Round each value to the nearest fp16 (returned as fp32); CPU references use it for fp16 inputs. */
export function roundToF16(src: ArrayLike<number>): Float32Array {
  return fromF16Array(toF16Array(src));
}
