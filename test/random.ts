// Seeded random numbers for tests (mulberry32 + Box–Muller): the same seed gives the same
// data on every machine, so a failing case can be replayed.
export interface Rng {
  uniform(): number;
  normal(): number;
  /** n normal values × scale, as float32 (what the GPU sees). */
  normals(n: number, scale?: number): Float32Array;
  uniforms(n: number, lo?: number, hi?: number): Float32Array;
  int(lo: number, hi: number): number;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return {
    uniform,
    normal,
    normals: (n, scale = 1) => Float32Array.from({ length: n }, () => normal() * scale),
    uniforms: (n, lo = 0, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * uniform()),
    int: (lo, hi) => lo + Math.floor(uniform() * (hi - lo + 1)),
  };
}
