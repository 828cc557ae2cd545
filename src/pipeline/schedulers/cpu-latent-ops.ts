// LatentOps on Float32Array latents: the arithmetic runs in double per element and is
// rounded to float32 once, so a linear combination is as exact as float32 storage allows.
import type { LatentOps } from './types.ts';

export const cpuLatentOps: LatentOps<Float32Array> = {
  combine(terms) {
    if (terms.length === 0) throw new Error('combine: no terms');
    const n = terms[0][1].length;
    for (const [, x] of terms) {
      if (x.length !== n) throw new Error(`combine: latent lengths differ (${n} vs ${x.length})`);
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (const [c, x] of terms) s += c * x[i];
      out[i] = s;
    }
    return out;
  },
  clamp(x, lo, hi) {
    return x.map((v) => Math.min(Math.max(v, lo), hi));
  },
  release() {},
};
