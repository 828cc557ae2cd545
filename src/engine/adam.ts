// Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter): one fused WGSL update per parameter.
// `weightDecay` is an L2 term added to the gradient for Adam, and a decoupled shrink of
// the weights for AdamW.
import { ELEMENTWISE_WG } from './builtin-kernels.ts';
import type { Engine } from './engine.ts';
import { defineKernel, f32, grid1d, u32, WGSL_FLAT_INDEX } from './kernel.ts';
import type { Tensor } from './tensor.ts';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** true = AdamW (decoupled weight decay). */
  decoupled?: boolean;
}

// p, m, v, g: (n)
const adamKernel = defineKernel({
  name: 'adam_step',
  storage: ['write', 'write', 'write', 'read'],
  uniforms: true,
  code: /* wgsl */ `
struct Params { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, decoupled: u32, bc1: f32, bc2: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;
${WGSL_FLAT_INDEX}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid, ${ELEMENTWISE_WG}u);
  if (i >= u.n) { return; }
  var w = p[i];
  var grad = g[i];
  if (u.decoupled == 1u) { w = w - u.lr * u.wd * w; } else { grad = grad + u.wd * w; }
  let mi = u.beta1 * m[i] + (1.0 - u.beta1) * grad;
  let vi = u.beta2 * v[i] + (1.0 - u.beta2) * grad * grad;
  m[i] = mi;
  v[i] = vi;
  p[i] = w - u.lr * (mi / u.bc1) / (sqrt(vi / u.bc2) + u.eps);
}`,
});

export class Adam {
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private t = 0;
  readonly options: Required<AdamOptions>;

  constructor(
    private readonly engine: Engine,
    readonly params: readonly Tensor[],
    options: AdamOptions,
  ) {
    this.options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, ...options };
    for (const p of params) {
      if (p.dtype !== 'f32') throw new Error(`Adam: ${p.name ?? p} must be f32 (master weights)`);
    }
    this.m = params.map((p) => engine.keep(engine.zeros(p.shape)));
    this.v = params.map((p) => engine.keep(engine.zeros(p.shape)));
  }

  get stepCount(): number {
    return this.t;
  }

  /** Apply one update from each parameter's `.grad` (parameters without grad are skipped). */
  step(lr = this.options.lr): void {
    this.t++;
    const { beta1, beta2, eps, weightDecay, decoupled } = this.options;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      this.engine.dispatch(adamKernel, [p, this.m[i], this.v[i], p.grad], grid1d(p.size, ELEMENTWISE_WG), [
        u32(p.size),
        f32(lr),
        f32(beta1),
        f32(beta2),
        f32(eps),
        f32(weightDecay),
        u32(decoupled ? 1 : 0),
        f32(1 - beta1 ** this.t),
        f32(1 - beta2 ** this.t),
      ]);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Optimizer state for checkpoints: step count and the moment tensors. */
  state(): { step: number; m: readonly Tensor[]; v: readonly Tensor[] } {
    return { step: this.t, m: this.m, v: this.v };
  }

  setStep(step: number): void {
    this.t = step;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** CPU reference of one Adam/AdamW update (float64), for tests. */
export function adamStepRef(
  p: Float64Array,
  m: Float64Array,
  v: Float64Array,
  g: ArrayLike<number>,
  t: number,
  o: Required<AdamOptions>,
): void {
  for (let i = 0; i < p.length; i++) {
    let w = p[i];
    let grad = g[i];
    if (o.decoupled) w -= o.lr * o.weightDecay * w;
    else grad += o.weightDecay * w;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * grad;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * grad * grad;
    const mHat = m[i] / (1 - o.beta1 ** t);
    const vHat = v[i] / (1 - o.beta2 ** t);
    p[i] = w - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
  }
}
