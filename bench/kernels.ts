// Kernel benchmark: each op's forward and backward on the engine, and the same op as an
// ONNX graph on onnxruntime-web's WebGPU EP — on the engine's own GPUDevice, reading the
// engine's input buffers, in the same process. Not a timed test: numbers are for humans and
// for bench/results.json (docs/architecture.md).
//
// The ONNX graphs are traced with the OnnxTracer the app's exported graphs come from
// (src/onnx/onnx-tracer.ts, as src/onnx/export-graphs.ts uses it): each case calls the
// tracer's TensorOps method, so ORT runs exactly the node pattern the app ships for that op
// (e.g. GroupNorm as Reshape · InstanceNormalization · affine, attention as MatMul · Softmax ·
// MatMul). Other tracer options (com.microsoft MultiHeadAttention) are timed as alternatives.
//
// Timing: after a first call (which compiles every pipeline) and warm-up calls, each
// sample runs the work `inner` times between two queue drains (engine.sync()), with
// `inner` chosen so a sample lasts ≥ ~25 ms; the median sample / inner is reported. A
// backward needs a fresh forward on the tape every time, so it cannot be batched alone:
// where one forward + backward takes ≥ ~25 ms it is timed alone between drains, otherwise
// it is median(forward + backward) − median(forward), both batched.
// FLOP counts are nominal ("useful") FLOPs — the same number for the engine and ORT, so
// the ratio does not depend on the convention: matmul 2MNK fwd, 4MNK bwd; conv 2·MACs
// fwd, 4·MACs bwd (dX, dW); attention 4·B·H·Nq·Nk·D fwd, 8·B·H·Nq·Nk·D bwd (recomputation
// not counted); norms 8 fwd and 16 bwd per element; SiLU 4 fwd and 8 bwd per element.
import { Engine } from '../src/engine/engine.ts';
import type { GpuInfo } from '../src/engine/gpu.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { floatInitializer } from '../src/onnx/onnx-proto.ts';
import { OnnxTracer, type OnnxTracerOptions, type TraceValue } from '../src/onnx/onnx-tracer.ts';
import { OrtSession, ortVersion, type OrtGpuOutput } from '../src/onnx/ort.ts';
import { rng } from '../test/random.ts';

export const KERNEL_BENCH_OPS = [
  'matmul',
  'conv2d',
  'attention-self',
  'attention-cross',
  'group-norm',
  'layer-norm',
  'silu',
] as const;
export type KernelBenchOp = (typeof KERNEL_BENCH_OPS)[number];

export interface KernelBenchOptions {
  /** Smaller shapes and fewer runs (a smoke run on a software adapter). */
  quick?: boolean;
  /** Run only these ops. */
  only?: readonly string[];
  /** Timed samples per measurement (default 5, quick 3). */
  runs?: number;
  /** Untimed runs after the first (compiling) one; at least 1 (default 1). */
  warmup?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Use this engine instead of creating (and destroying) one. */
  engine?: Engine;
}

export interface EngineTiming {
  forwardMs: number;
  backwardMs: number;
  forwardBackwardMs: number;
  forwardGflops: number;
  backwardGflops: number;
  /** backward time / forward time (≈ 2 is typical for matmul-like ops). */
  backwardOverForward: number;
  /**
   * 'direct': backward timed alone after a drained forward (ops ≥ ~25 ms per step);
   * 'difference': median(forward + backward) − median(forward), both batched.
   */
  backwardMethod: 'direct' | 'difference';
  /** First forward (pipeline compilation included). */
  firstForwardMs: number;
  forwardDispatches: number;
  backwardDispatches: number;
  /** Pool live-bytes peak during one forward + backward (inputs and dY included). */
  peakPoolBytes: number;
  /** That peak minus what was live before (inputs, dY): the op's working memory. */
  workingPoolBytes: number;
}

export interface OrtTiming {
  forwardMs: number;
  forwardGflops: number;
  firstForwardMs: number;
  sessionCreateMs: number;
  /** The ONNX graph that was timed: its op types in order, e.g. "Reshape+Transpose+MatMul+Mul+Softmax". */
  graph: string;
  /** Whether every node ran on the WebGPU EP (false: ORT put some on its CPU EP). */
  allOnGpu: boolean;
  /** max |engine − ORT| over the forward output, relative to max |ORT output|. */
  relDiffVsEngine?: number;
  /** Engine forward GFLOP/s ÷ this graph's GFLOP/s. */
  engineOverOrt?: number;
}

export interface KernelBenchRow {
  op: KernelBenchOp;
  shape: string;
  status: 'ok' | 'not available' | 'error';
  /** Why a row is not available or failed, or a remark. */
  note?: string;
  flops: { forward: number; backward: number };
  engine?: EngineTiming;
  /** ORT on the op's primary graph (its fused operator where one exists). */
  ort?: OrtTiming;
  ortError?: string;
  /** ORT on other graphs of the same op. */
  ortAlternatives?: (OrtTiming | { graph: string; error: string })[];
  /** Engine forward GFLOP/s ÷ ORT forward GFLOP/s (> 1: the engine is faster). */
  engineOverOrt?: number;
  /** max |engine − ORT| over the forward output, relative to max |ORT output|. */
  relDiffVsOrt?: number;
}

export interface KernelBenchReport {
  suite: 'kernels';
  date: string;
  quick: boolean;
  adapter: GpuInfo;
  /** onnxruntime-web version and where it ran. */
  ort: { version: string; device: string };
  node: string;
  runs: number;
  warmup: number;
  rows: KernelBenchRow[];
}

// ---------------------------------------------------------------- cases

type Role = 'input' | 'weight';

interface InputSpec {
  name: string;
  shape: number[];
  role: Role;
  /** Values: mean + scale · N(0, 1). */
  mean?: number;
  scale?: number;
}

interface OnnxPart {
  /** What the graph is, for the report (the op types it holds are added when traced). */
  label: string;
  /** Tracer options (default: those of the app's exported graphs). */
  tracer?: OnnxTracerOptions;
  /** Records the op with the tracer's TensorOps method, as the model code does. */
  trace: (t: OnnxTracer, v: Readonly<Record<string, TraceValue>>) => TraceValue;
}

type EngineOp = (xs: Tensor[]) => Tensor;

interface BenchCase {
  op: KernelBenchOp;
  shape: string;
  inputs: InputSpec[];
  output: number[];
  flops: { forward: number; backward: number };
  /** Loads the engine's differentiable op; a rejected promise makes the row "not available". */
  engineOp: () => Promise<EngineOp>;
  onnx: OnnxPart;
  /** Other ORT graphs of the same op, timed as well (e.g. attention without the fused op). */
  onnxAlternatives?: OnnxPart[];
}

const x4 = (s: readonly number[]) => s.join('×');

function matmulCase(M: number, K: number, N: number): BenchCase {
  return {
    op: 'matmul',
    shape: `${M}×${K} · ${K}×${N}`,
    inputs: [
      { name: 'a', shape: [M, K], role: 'input' },
      { name: 'b', shape: [K, N], role: 'input' },
    ],
    output: [M, N],
    flops: { forward: 2 * M * N * K, backward: 4 * M * N * K },
    engineOp: async () => {
      const { matmul } = await import('../src/kernels/matmul/matmul.ts');
      return ([a, b]) => matmul(a, b);
    },
    onnx: { label: 'matmul', trace: (t, v) => t.matmul(v.a, v.b) },
  };
}

function conv2dCase(B: number, Cin: number, H: number, W: number, Cout: number): BenchCase {
  const macs = B * Cout * H * W * Cin * 9;
  return {
    op: 'conv2d',
    shape: `${x4([B, Cin, H, W])} → ${Cout}, 3×3 pad 1`,
    inputs: [
      { name: 'x', shape: [B, Cin, H, W], role: 'input' },
      { name: 'w', shape: [Cout, Cin, 3, 3], role: 'weight', scale: 1 / Math.sqrt(Cin * 9) },
      { name: 'bias', shape: [Cout], role: 'weight', scale: 0.1 },
    ],
    output: [B, Cout, H, W],
    flops: { forward: 2 * macs, backward: 4 * macs },
    engineOp: async () => {
      const { conv2d } = await import('../src/kernels/conv2d/conv2d.ts');
      return ([x, w, b]) => conv2d(x, w, b, { padding: 1 });
    },
    onnx: { label: 'conv2d', trace: (t, v) => t.conv2d(v.x, v.w, v.bias, { padding: 1 }) },
  };
}

function attentionCase(op: KernelBenchOp, B: number, heads: number, Nq: number, Nk: number, D: number): BenchCase {
  const C = heads * D;
  const pairs = B * heads * Nq * Nk * D;
  const trace = (t: OnnxTracer, v: Readonly<Record<string, TraceValue>>) => t.attention(v.q, v.k, v.v, heads);
  return {
    op,
    shape: `${heads} heads × ${Nq} q × ${Nk} kv × ${D} d`,
    inputs: [
      { name: 'q', shape: [B, Nq, C], role: 'input' },
      { name: 'k', shape: [B, Nk, C], role: 'input' },
      { name: 'v', shape: [B, Nk, C], role: 'input' },
    ],
    output: [B, Nq, C],
    flops: { forward: 4 * pairs, backward: 8 * pairs },
    engineOp: async () => {
      const { attention } = await import('../src/kernels/attention/attention.ts');
      return ([q, k, v]) => attention(q, k, v, heads);
    },
    // The app ships the decomposition (materialises the (B, H, Nq, Nk) scores); the fused
    // contrib op is the tracer's other mode, not shipped (wrong on subgroup-8 devices, see
    // onnx-tracer.ts).
    onnx: { label: 'attention', trace },
    onnxAlternatives: [{ label: 'attention, tracer mode mha (not shipped)', tracer: { attention: 'mha' }, trace }],
  };
}

function groupNormCase(B: number, C: number, H: number, W: number, G: number): BenchCase {
  const n = B * C * H * W;
  return {
    op: 'group-norm',
    shape: `${x4([B, C, H, W])}, ${G} groups`,
    inputs: [
      { name: 'x', shape: [B, C, H, W], role: 'input' },
      { name: 'gamma', shape: [C], role: 'weight', mean: 1, scale: 0.1 },
      { name: 'beta', shape: [C], role: 'weight', scale: 0.1 },
    ],
    output: [B, C, H, W],
    flops: { forward: 8 * n, backward: 16 * n },
    engineOp: async () => {
      const { groupNorm } = await import('../src/kernels/group-norm/group-norm.ts');
      return ([x, w, b]) => groupNorm(x, G, w, b, 1e-5);
    },
    onnx: { label: 'groupNorm', trace: (t, v) => t.groupNorm(v.x, G, v.gamma, v.beta, 1e-5) },
  };
}

function layerNormCase(rows: number, C: number): BenchCase {
  const n = rows * C;
  return {
    op: 'layer-norm',
    shape: `${rows}×${C}`,
    inputs: [
      { name: 'x', shape: [rows, C], role: 'input' },
      { name: 'gamma', shape: [C], role: 'weight', mean: 1, scale: 0.1 },
      { name: 'beta', shape: [C], role: 'weight', scale: 0.1 },
    ],
    output: [rows, C],
    flops: { forward: 8 * n, backward: 16 * n },
    engineOp: async () => {
      const { layerNorm } = await import('../src/kernels/layer-norm/layer-norm.ts');
      return ([x, w, b]) => layerNorm(x, w, b, 1e-5);
    },
    onnx: { label: 'layerNorm', trace: (t, v) => t.layerNorm(v.x, v.gamma, v.beta, 1e-5) },
  };
}

function siluCase(shape: number[]): BenchCase {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    op: 'silu',
    shape: x4(shape),
    inputs: [{ name: 'x', shape, role: 'input' }],
    output: shape,
    flops: { forward: 4 * n, backward: 8 * n },
    engineOp: async () => {
      const { silu } = await import('../src/kernels/silu/silu.ts');
      return ([x]) => silu(x);
    },
    onnx: { label: 'silu', trace: (t, v) => t.silu(v.x) },
  };
}

/** The benchmark shapes: SD 1.5's first UNet level (full) or a scaled-down smoke set. */
export function kernelBenchCases(quick: boolean): BenchCase[] {
  return quick
    ? [
        matmulCase(256, 256, 256),
        conv2dCase(1, 64, 32, 32, 64),
        attentionCase('attention-self', 1, 2, 256, 256, 40),
        attentionCase('attention-cross', 1, 2, 256, 77, 40),
        // The VAE mid-block's one 512-wide head (16×16 latent pixels).
        attentionCase('attention-self', 1, 1, 256, 256, 512),
        groupNormCase(1, 64, 32, 32, 32),
        layerNormCase(1024, 320),
        siluCase([1, 64, 32, 32]),
      ]
    : [
        matmulCase(1024, 1024, 1024),
        conv2dCase(1, 320, 64, 64, 320),
        attentionCase('attention-self', 1, 8, 1024, 1024, 40),
        attentionCase('attention-cross', 1, 8, 1024, 77, 40),
        // SD 1.5's widest UNet heads, and the VAE mid-block at 512 px (64×64 latent pixels).
        attentionCase('attention-self', 1, 8, 1024, 1024, 160),
        attentionCase('attention-self', 1, 1, 4096, 4096, 512),
        groupNormCase(1, 320, 64, 64, 32),
        layerNormCase(4096, 320),
        siluCase([1, 320, 64, 64]),
      ];
}

// ---------------------------------------------------------------- measurement

const now = (): number => performance.now();
const SAMPLE_TARGET_MS = 25;
const MAX_INNER = 64;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const gflops = (flops: number, ms: number): number => (ms > 0 ? flops / ms / 1e6 : NaN);

interface Timer {
  runs: number;
  warmup: number;
}

/**
 * Median per-call time of `step` (which enqueues GPU work), measured between queue
 * drains. Returns the first call's time too (pipeline compilation).
 */
async function measure(
  engine: Engine,
  t: Timer,
  step: () => Promise<void>,
): Promise<{ ms: number; firstMs: number; inner: number }> {
  await engine.sync();
  let start = now();
  await step();
  await engine.sync();
  const firstMs = now() - start;
  // Calibrate on a warm call: the first one includes pipeline compilation.
  let last = firstMs;
  for (let i = 0; i < Math.max(1, t.warmup); i++) {
    start = now();
    await step();
    await engine.sync();
    last = now() - start;
  }
  const inner = Math.max(1, Math.min(MAX_INNER, Math.ceil(SAMPLE_TARGET_MS / Math.max(last, 1e-3))));
  const samples: number[] = [];
  for (let r = 0; r < t.runs; r++) {
    start = now();
    for (let i = 0; i < inner; i++) await step();
    await engine.sync();
    samples.push((now() - start) / inner);
  }
  return { ms: median(samples), firstMs, inner };
}

function makeData(c: BenchCase, seed: number): Float32Array[] {
  const r = rng(seed);
  return c.inputs.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = r.normals(n, s.scale ?? 1);
    if (s.mean) for (let i = 0; i < n; i++) v[i] += s.mean;
    return v;
  });
}

async function benchEngine(
  engine: Engine,
  c: BenchCase,
  op: EngineOp,
  xs: Tensor[],
  dY: Tensor,
  t: Timer,
): Promise<EngineTiming> {
  const clearGrads = () => {
    for (const x of xs) {
      x.grad?.dispose();
      x.grad = null;
    }
  };
  const fwd = await measure(engine, t, async () => {
    // The block body matters: a scope keeps (and hands to its parent) what it returns.
    engine.scope(() => {
      engine.noGrad(() => op(xs));
    });
  });
  const fwdBwd = await measure(engine, t, async () => {
    engine.scope(() => {
      engine.backward(op(xs), dY);
    });
    clearGrads();
  });
  // Where one forward + backward is long against a queue drain, time the backward alone
  // (a difference of two noisy medians can even come out negative); else subtract.
  let backwardMs: number;
  let backwardMethod: EngineTiming['backwardMethod'];
  if (fwdBwd.inner === 1) {
    const samples: number[] = [];
    for (let r = 0; r < t.runs; r++) {
      await engine.scopeAsync(async () => {
        const y = op(xs);
        await engine.sync();
        const start = now();
        engine.backward(y, dY);
        await engine.sync();
        samples.push(now() - start);
      });
      clearGrads();
    }
    backwardMs = median(samples);
    backwardMethod = 'direct';
  } else {
    backwardMs = Math.max(0, fwdBwd.ms - fwd.ms);
    backwardMethod = 'difference';
  }

  // Dispatch counts and memory from one more forward + backward.
  await engine.sync();
  const base = engine.pool.getStats().liveBytes;
  engine.pool.resetPeak();
  const d0 = engine.dispatchCount;
  const y = op(xs);
  const d1 = engine.dispatchCount;
  engine.backward(y, dY);
  const d2 = engine.dispatchCount;
  y.dispose();
  clearGrads();
  await engine.sync();
  const peak = engine.pool.getStats().peakLiveBytes;

  return {
    forwardMs: fwd.ms,
    backwardMs,
    forwardBackwardMs: fwdBwd.ms,
    forwardGflops: gflops(c.flops.forward, fwd.ms),
    backwardGflops: gflops(c.flops.backward, backwardMs),
    backwardOverForward: backwardMs / fwd.ms,
    backwardMethod,
    firstForwardMs: fwd.firstMs,
    forwardDispatches: d1 - d0,
    // engine.backward seeds with a copy of dY: not part of the op's backward.
    backwardDispatches: d2 - d1 - 1,
    peakPoolBytes: peak,
    workingPoolBytes: peak - base,
  };
}

/**
 * The case's op traced into an ONNX model the way the app's graphs are: graph inputs for the
 * 'input' tensors, initializers for the weights, the op recorded through the tracer.
 */
function tracedModel(c: BenchCase, o: OnnxPart, data: Float32Array[]): { bytes: Uint8Array; graph: string } {
  const t = new OnnxTracer(o.tracer);
  const v: Record<string, TraceValue> = {};
  c.inputs.forEach((s, i) => {
    v[s.name] =
      s.role === 'input' ? t.input(s.name, s.shape) : t.initializer(floatInitializer(s.name, s.shape, data[i]));
  });
  const y = o.trace(t, v);
  if (y.shape.join() !== c.output.join()) throw new Error(`traced ${o.label}: output [${y.shape}] ≠ [${c.output}]`);
  t.output('y', y);
  const model = t.model({ name: c.op });
  // The graph's op types in order of first use, without the Identity that names the output.
  const ops = [
    ...new Set(
      model.graph.nodes
        .filter((n) => n.opType !== 'Identity')
        .map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)),
    ),
  ];
  return {
    bytes: t.encode({ name: c.op }),
    graph: `${ops.join('+')}${o.tracer?.attention === 'mha' ? ' (not shipped)' : ''}`,
  };
}

async function benchOrt(
  engine: Engine,
  c: BenchCase,
  part: OnnxPart,
  data: Float32Array[],
  xs: Tensor[],
  t: Timer,
): Promise<{ timing: OrtTiming; output: Float32Array }> {
  const { bytes, graph } = tracedModel(c, part, data);
  let start = now();
  let allOnGpu = true;
  let session: OrtSession;
  const create = (gpuOnly: boolean) =>
    OrtSession.create(bytes, { backend: 'webgpu', device: engine.device, outputsOnGpu: true, gpuOnly });
  try {
    session = await create(true);
  } catch {
    // Some node has no WebGPU kernel: time what ORT really does (a CPU/GPU split) and say so.
    allOnGpu = false;
    start = now();
    session = await create(false);
  }
  const sessionCreateMs = now() - start;
  try {
    const feeds: Record<string, { buffer: GPUBuffer; dims: readonly number[] }> = {};
    c.inputs.forEach((s, i) => {
      if (s.role === 'input') feeds[s.name] = { buffer: xs[i].buffer, dims: s.shape };
    });
    const run = async (): Promise<OrtGpuOutput> => (await session.runGpu(feeds)).y;
    const fwd = await measure(engine, t, async () => (await run()).dispose());
    // One more run, read back through the engine for the cross-check.
    const out = await run();
    const output = await engine.scopeAsync(async () => {
      const y = engine.empty(c.output);
      engine.fill(y, NaN); // a copy that did not happen must not read as agreement
      await engine.sync();
      const enc = engine.device.createCommandEncoder();
      enc.copyBufferToBuffer(out.buffer, 0, y.buffer, 0, y.byteLength);
      engine.device.queue.submit([enc.finish()]);
      return y.read();
    });
    out.dispose();
    return {
      timing: {
        graph,
        forwardMs: fwd.ms,
        forwardGflops: gflops(c.flops.forward, fwd.ms),
        firstForwardMs: fwd.firstMs,
        sessionCreateMs,
        allOnGpu,
      },
      output,
    };
  } finally {
    await session.release();
  }
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    const d = Math.abs(a[i] - b[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
  }
  return diff / (scale || 1);
}

/** fp32 on both sides: anything above this is a wrong result, not rounding. */
const AGREEMENT = 1e-3;

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 200);

async function benchCase(engine: Engine, c: BenchCase, t: Timer, seed: number): Promise<KernelBenchRow> {
  const row: KernelBenchRow = { op: c.op, shape: c.shape, status: 'ok', flops: c.flops };
  const notes: string[] = [];
  let op: EngineOp;
  try {
    op = await c.engineOp();
  } catch (e) {
    return { ...row, status: 'not available', note: `engine op not available: ${message(e)}` };
  }
  const data = makeData(c, seed);
  await engine.scopeAsync(async () => {
    const xs = c.inputs.map((s, i) => engine.tensor(data[i], s.shape, { requiresGrad: true, name: s.name }));
    const dY = engine.tensor(rng(seed + 1).normals(c.output.reduce((a, b) => a * b, 1)), c.output);
    let engineOut: Float32Array | null = null;
    try {
      engineOut = await engine.scopeAsync(async () => {
        const y = engine.noGrad(() => op(xs));
        if (y.shape.join() !== c.output.join()) throw new Error(`engine output [${y.shape}] ≠ [${c.output}]`);
        return y.read();
      });
      row.engine = await benchEngine(engine, c, op, xs, dY, t);
    } catch (e) {
      row.status = 'error';
      notes.push(`engine: ${message(e)}`);
    }
    for (const [i, part] of [c.onnx, ...(c.onnxAlternatives ?? [])].entries()) {
      let timing: OrtTiming;
      try {
        const r = await benchOrt(engine, c, part, data, xs, t);
        timing = r.timing;
        if (engineOut) timing.relDiffVsEngine = relDiff(engineOut, r.output);
        if (row.engine) timing.engineOverOrt = row.engine.forwardGflops / timing.forwardGflops;
      } catch (e) {
        if (i === 0) row.ortError = message(e);
        else (row.ortAlternatives ??= []).push({ graph: part.label, error: message(e) });
        continue;
      }
      if (!timing.allOnGpu) notes.push(`ORT ran part of ${timing.graph} on its CPU EP`);
      if ((timing.relDiffVsEngine ?? 0) > AGREEMENT) {
        notes.push(`ORT ${timing.graph} disagrees with the engine (Δ ${timing.relDiffVsEngine!.toExponential(1)})`);
      }
      if (i === 0) {
        row.ort = timing;
        row.relDiffVsOrt = timing.relDiffVsEngine;
        row.engineOverOrt = timing.engineOverOrt;
      } else {
        (row.ortAlternatives ??= []).push(timing);
      }
    }
  });
  if (notes.length) row.note = notes.join('; ');
  return row;
}

/** Run the kernel benchmark. */
export async function runKernelBench(options: KernelBenchOptions = {}): Promise<KernelBenchReport> {
  const quick = !!options.quick;
  const t: Timer = { runs: options.runs ?? (quick ? 3 : 5), warmup: Math.max(1, options.warmup ?? 1) };
  const log = options.log ?? (() => {});
  const only = options.only?.length ? new Set(options.only) : null;
  if (only) {
    const unknown = [...only].filter((o) => !(KERNEL_BENCH_OPS as readonly string[]).includes(o));
    if (unknown.length)
      throw new Error(`bench: unknown op(s) ${unknown.join(', ')}; known: ${KERNEL_BENCH_OPS.join(', ')}`);
  }
  const engine = options.engine ?? (await Engine.create());
  try {
    const rows: KernelBenchRow[] = [];
    const cases = kernelBenchCases(quick).filter((c) => !only || only.has(c.op));
    for (const [i, c] of cases.entries()) {
      log(`[${i + 1}/${cases.length}] ${c.op} ${c.shape}`);
      rows.push(await benchCase(engine, c, t, 1000 + i));
    }
    return {
      suite: 'kernels',
      date: new Date().toISOString(),
      quick,
      adapter: engine.info,
      ort: { version: await ortVersion(), device: 'WebGPU EP on the engine’s GPUDevice' },
      node: typeof process !== 'undefined' ? process.version : 'n/a',
      runs: t.runs,
      warmup: t.warmup,
      rows,
    };
  } finally {
    if (!options.engine) engine.destroy();
  }
}

// ---------------------------------------------------------------- report

const fmt = (v: number | undefined, digits = 1): string =>
  v === undefined || !Number.isFinite(v) ? '–' : v >= 1000 ? v.toFixed(0) : v.toFixed(digits);
const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / 2 ** 20).toFixed(1));

/** The human table. */
export function formatKernelTable(r: KernelBenchReport): string {
  const head = [
    'op',
    'shape',
    'fwd ms',
    'fwd GF/s',
    'bwd ms',
    'bwd GF/s',
    'bwd/fwd',
    'ORT ms',
    'ORT GF/s',
    'eng/ORT',
    'peak MiB',
    'Δ vs ORT',
  ];
  const body = r.rows.map((row) => {
    const e = row.engine;
    const o = row.ort;
    return [
      row.op,
      row.shape,
      fmt(e?.forwardMs, 2),
      fmt(e?.forwardGflops, 2),
      fmt(e?.backwardMs, 2),
      fmt(e?.backwardGflops, 2),
      fmt(e?.backwardOverForward, 2),
      o ? fmt(o.forwardMs, 2) : row.ortError ? 'error' : '–',
      fmt(o?.forwardGflops, 2),
      fmt(row.engineOverOrt, 2),
      mib(e?.peakPoolBytes),
      row.relDiffVsOrt === undefined ? '–' : row.relDiffVsOrt.toExponential(1),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const notes = r.rows
    .filter((row) => row.note || row.ortError || row.status !== 'ok')
    .map(
      (row) =>
        `  ${row.op}: ${[row.status !== 'ok' ? row.status : '', row.note, row.ortError && `ORT: ${row.ortError}`].filter(Boolean).join('; ')}`,
    );
  const graphs = r.rows.filter((row) => row.ort).map((row) => `${row.op}: ${row.ort!.graph}`);
  const alternatives = r.rows.flatMap((row) =>
    (row.ortAlternatives ?? []).map((a) =>
      'error' in a
        ? `  ${row.op} via ${a.graph}: error ${a.error}`
        : `  ${row.op} via ${a.graph}: ${fmt(a.forwardMs, 2)} ms, ${fmt(a.forwardGflops, 2)} GFLOP/s, ` +
          `eng/ORT ${fmt(a.engineOverOrt, 2)}, Δ ${a.relDiffVsEngine === undefined ? '–' : a.relDiffVsEngine.toExponential(1)}`,
    ),
  );
  return [
    `Kernel benchmark${r.quick ? ' (quick)' : ''} — adapter: ${r.adapter.name} [${r.adapter.runtime}, f16 ${r.adapter.f16}, subgroups ${r.adapter.subgroups}]`,
    `onnxruntime-web ${r.ort.version}, ${r.ort.device}; median of ${r.runs} samples after 1 compiling + ${r.warmup} warm-up call(s); Node ${r.node}`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    'eng/ORT = engine forward GFLOP/s ÷ ORT forward GFLOP/s (> 1: engine faster). Δ vs ORT = max|engine − ORT| / max|ORT|.',
    graphs.length ? `ORT graphs: ${graphs.join('; ')}` : '',
    ...(alternatives.length ? ['ORT, other graphs:', ...alternatives] : []),
    ...(notes.length ? ['Notes:', ...notes] : []),
  ]
    .filter((l, i, a) => l !== '' || a[i - 1] !== '')
    .join('\n');
}
