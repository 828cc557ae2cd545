// CPU reference (plain loops, float64) of diffusers' get_timestep_embedding:
//   half = ⌊dim/2⌋,  f_i = exp(−ln(maxPeriod)·i / (half − downscaleFreqShift)),  a_bi = scale·t_b·f_i
//   y_b = [sin a_b, cos a_b]  ([cos a_b, sin a_b] with flipSinToCos), zero-padded when dim is odd.
//   ∂y/∂t: d sin(a)/dt = scale·f·cos a,  d cos(a)/dt = −scale·f·sin a.

export interface TimestepEmbeddingOptions {
  /** Put the cosines first (diffusers default false; the SD UNet uses true). */
  flipSinToCos?: boolean;
  /** Subtracted from `half` in the frequency exponent (diffusers default 1; the SD UNet uses 0). */
  downscaleFreqShift?: number;
  /** Multiplies the angles (default 1). */
  scale?: number;
  /** Period of the lowest frequency (default 10000). */
  maxPeriod?: number;
}

export interface ResolvedTimestepOptions {
  flipSinToCos: boolean;
  downscaleFreqShift: number;
  scale: number;
  maxPeriod: number;
}

export function resolveTimestepOptions(dim: number, opts: TimestepEmbeddingOptions = {}): ResolvedTimestepOptions {
  const o = {
    flipSinToCos: opts.flipSinToCos ?? false,
    downscaleFreqShift: opts.downscaleFreqShift ?? 1,
    scale: opts.scale ?? 1,
    maxPeriod: opts.maxPeriod ?? 10000,
  };
  if (!Number.isInteger(dim) || dim < 1)
    throw new RangeError(`timestep embedding: dim ${dim} is not a positive integer`);
  if (Math.floor(dim / 2) - o.downscaleFreqShift === 0 && dim >= 2) {
    throw new RangeError(
      `timestep embedding: dim ${dim} with downscaleFreqShift ${o.downscaleFreqShift} divides by zero`,
    );
  }
  if (!(o.maxPeriod > 0)) throw new RangeError(`timestep embedding: maxPeriod ${o.maxPeriod} must be positive`);
  return o;
}

/**
 * The ⌊dim/2⌋ frequencies as PyTorch computes them in float32 (every intermediate rounded
 * to fp32, as `-math.log(max_period) * torch.arange(..., dtype=float32)` then `/`, `exp`
 * do), so that the GPU's angles t·f are the same fp32 numbers diffusers feeds to sin/cos.
 */
export function timestepFrequencies(dim: number, o: ResolvedTimestepOptions): Float32Array {
  const half = Math.floor(dim / 2);
  const f = new Float32Array(half);
  const negLog = Math.fround(-Math.log(o.maxPeriod));
  const denom = Math.fround(half - o.downscaleFreqShift);
  for (let i = 0; i < half; i++) f[i] = Math.exp(Math.fround(Math.fround(negLog * i) / denom));
  return f;
}

/**
 * The angle scale·t·f: exact in float64 by default (smooth in t, for finite differences);
 * with `fp32Angles`, rounded as PyTorch (and the GPU) do — fround(fround(t·f)·scale) — to
 * compare fp32 implementations without the angle rounding that no fp32 code can avoid.
 */
const angle = (t: number, f: number, scale: number, fp32Angles: boolean): number =>
  fp32Angles ? Math.fround(Math.fround(t * f) * scale) : scale * t * f;

// t: (B) → y: (B, dim)
export function timestepEmbeddingForwardRef(
  t: ArrayLike<number>,
  dim: number,
  opts?: TimestepEmbeddingOptions,
  fp32Angles = false,
): Float64Array {
  const o = resolveTimestepOptions(dim, opts);
  const f = timestepFrequencies(dim, o);
  const half = f.length;
  const y = new Float64Array(t.length * dim);
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const a = angle(t[b], f[i], o.scale, fp32Angles);
      const [first, second] = o.flipSinToCos ? [Math.cos(a), Math.sin(a)] : [Math.sin(a), Math.cos(a)];
      y[b * dim + i] = first;
      y[b * dim + half + i] = second;
    }
  }
  return y;
}

// t: (B), dY: (B, dim) → dT: (B)
export function timestepEmbeddingBackwardRef(
  t: ArrayLike<number>,
  dY: ArrayLike<number>,
  dim: number,
  opts?: TimestepEmbeddingOptions,
  fp32Angles = false,
): Float64Array {
  const o = resolveTimestepOptions(dim, opts);
  const f = timestepFrequencies(dim, o);
  const half = f.length;
  const dT = new Float64Array(t.length);
  for (let b = 0; b < t.length; b++) {
    let acc = 0;
    for (let i = 0; i < half; i++) {
      const a = angle(t[b], f[i], o.scale, fp32Angles);
      const dFirst = dY[b * dim + i];
      const dSecond = dY[b * dim + half + i];
      const [dSin, dCos] = o.flipSinToCos ? [dSecond, dFirst] : [dFirst, dSecond];
      acc += o.scale * f[i] * (dSin * Math.cos(a) - dCos * Math.sin(a));
    }
    dT[b] = acc;
  }
  return dT;
}
