// Deterministic initial weights for a tuning encoder: PyTorch's default for Linear/Conv
// (U(−1/√fan_in, 1/√fan_in) for weights and biases), ones/zeros for norms, N(0, 0.02²) for
// the target embeddings, and exact zeros for the hypernetwork's B heads so that ΔW = 0 and
// the first forward is the vanilla UNet (paper App. A).
import { Params } from '../params.ts';
import { ParamRecorder, ShapeOps } from '../shape-ops.ts';
import { isZeroInitialised, tuningEncoder } from './tuning-encoder.ts';
import type { LoraTarget, TuningEncoderConfig } from './tuning-encoder-config.ts';

/** mulberry32 + Box–Muller: small, seedable, identical everywhere. */
function rng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** The encoder's parameters (names and shapes), as its forward asks for them. */
export function tuningEncoderParamShapes(c: TuningEncoderConfig, targets: readonly LoraTarget[]): Map<string, number[]> {
  const rec = new ParamRecorder();
  tuningEncoder(new ShapeOps(), new Params(rec), c, targets, { shape: [1, 1 + c.clip_grid ** 2, c.clip_channels] }, {
    shape: [1, c.unet_channels, c.unet_grid, c.unet_grid],
  });
  return rec.requested;
}

export function initTuningEncoder(c: TuningEncoderConfig, targets: readonly LoraTarget[], seed = 0): Map<string, { shape: number[]; data: Float32Array }> {
  const r = rng(seed);
  const shapes = tuningEncoderParamShapes(c, targets);
  // Biases take the fan-in of their weight.
  const fanIn = new Map<string, number>();
  for (const [name, shape] of shapes) {
    if (name.endsWith('.weight') && shape.length >= 2) fanIn.set(name.slice(0, -'.weight'.length), shape.slice(1).reduce((a, b) => a * b, 1));
  }
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of [...shapes.keys()].sort()) {
    const shape = shapes.get(name)!;
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const module = name.slice(0, name.lastIndexOf('.'));
    if (isZeroInitialised(name)) {
      // B heads: zero
    } else if (name.endsWith('target_embeddings')) {
      for (let i = 0; i < n; i++) data[i] = 0.02 * r.normal();
    } else if (/norm[^.]*\.weight$/.test(name)) {
      data.fill(1);
    } else if (/norm[^.]*\.bias$/.test(name)) {
      // zeros
    } else {
      const fan = fanIn.get(module);
      if (!fan) throw new Error(`tuning encoder init: no fan-in for ${name}`);
      const bound = 1 / Math.sqrt(fan);
      for (let i = 0; i < n; i++) data[i] = (2 * r.uniform() - 1) * bound;
    }
    out.set(name, { shape, data });
  }
  return out;
}
