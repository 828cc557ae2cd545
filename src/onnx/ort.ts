// onnxruntime-web session wrapper: the only module that imports onnxruntime-web.
//
// It loads ORT's WebGPU build (the native WebGPU execution provider, which also carries
// the wasm CPU provider for the fallback) and runs in a page, a worker and Node. In Node,
// ORT's WebGPU EP runs on dawn.node (the `webgpu` package the engine already uses) when:
//   - `navigator.gpu` exists (Node has none; we install the engine's GPU object),
//   - V8 compiles ORT's wasm with Liftoff only (else its background tier-up stalls the
//     first WebGPU run and process exit by ~35 s; docs/architecture.md),
//   - `GPUQueue.writeBuffer` never sees a view on a SharedArrayBuffer (ORT's wasm memory
//     is shared; dawn.node rejects such views), so those are copied first.
// A session may run on a caller's GPUDevice (e.g. the engine's), which is what makes
// "engine vs ORT" comparisons fair and lets ORT read the engine's buffers directly.
import type * as OrtModule from 'onnxruntime-web';

type Ort = typeof OrtModule;
type SessionOptions = OrtModule.InferenceSession.SessionOptions;

export type OrtBackend = 'webgpu' | 'wasm';

export interface OrtInitOptions {
  /** wasm threads; default 1 in Node (no worker threads to keep alive), ORT's default elsewhere. */
  numThreads?: number;
  logLevel?: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
}

export interface OrtExternalFile {
  /** The `location` the model's initializers name. */
  path: string;
  /** The bytes, or a URL / file path ORT fetches or reads. */
  data: Uint8Array | string;
}

export interface OrtSessionOptions {
  /** 'auto' (default): WebGPU when available, else wasm. */
  backend?: OrtBackend | 'auto';
  /** Run the WebGPU EP on this device (e.g. `engine.device`) instead of ORT's own. */
  device?: GPUDevice;
  externalData?: readonly OrtExternalFile[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Keep outputs in GPU buffers (WebGPU only): use runGpu(). */
  outputsOnGpu?: boolean;
  /**
   * WebGPU only: fail at creation if any node would run on the CPU provider, instead of
   * silently splitting the graph (benchmarks need to know what ran where).
   */
  gpuOnly?: boolean;
}

/** A float32 tensor on the CPU. */
export interface OrtArray {
  data: Float32Array;
  dims: readonly number[];
}

/** An integer input (token / position ids): int64 or int32, as the model declares it. */
export interface OrtIntArray {
  data: BigInt64Array | Int32Array;
  dims: readonly number[];
}

/** A float32 tensor in a GPUBuffer of the session's device. */
export interface OrtGpuArray {
  buffer: GPUBuffer;
  dims: readonly number[];
}

/** An output left on the GPU; dispose() hands its buffer back to ORT. */
export interface OrtGpuOutput extends OrtGpuArray {
  dispose(): void;
}

const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

let ortPromise: Promise<Ort> | null = null;
let nodeWebGpu: Promise<boolean> | null = null;

/** Load and configure onnxruntime-web once; options apply to the first call only. */
export function loadOrt(options: OrtInitOptions = {}): Promise<Ort> {
  ortPromise ??= (async () => {
    if (isNode()) {
      // A variable specifier keeps bundlers from resolving Node built-ins for the web build.
      const v8Module = 'node:v8';
      const v8 = (await import(/* @vite-ignore */ v8Module)) as typeof import('node:v8');
      v8.setFlagsFromString('--liftoff-only');
    }
    const ort = (await import('onnxruntime-web/webgpu')) as Ort;
    const numThreads = options.numThreads ?? (isNode() ? 1 : undefined);
    if (numThreads !== undefined) ort.env.wasm.numThreads = numThreads;
    ort.env.logLevel = options.logLevel ?? 'error';
    return ort;
  })();
  return ortPromise;
}

/** onnxruntime-web's version string, e.g. "1.30.0". */
export async function ortVersion(): Promise<string> {
  const ort = await loadOrt();
  return ort.env.versions.web ?? ort.env.versions.common;
}

/** Node: give ORT `navigator.gpu` (dawn.node) and SharedArrayBuffer-safe writeBuffer. */
function prepareNodeWebGpu(): Promise<boolean> {
  nodeWebGpu ??= (async () => {
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator?.gpu) {
      const nodeGpuModule = '../engine/node-gpu.ts';
      let gpu: GPU;
      try {
        const { nodeGpu } = (await import(/* @vite-ignore */ nodeGpuModule)) as typeof import('../engine/node-gpu.ts');
        gpu = await nodeGpu();
      } catch {
        return false;
      }
      if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
      else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    }
    patchWriteBuffer();
    return true;
  })();
  return nodeWebGpu;
}

const PATCHED = Symbol.for('likeness.writeBufferCopiesShared');

function patchWriteBuffer(): void {
  const Queue = (globalThis as { GPUQueue?: { prototype: GPUQueue } }).GPUQueue;
  if (!Queue || (Queue.prototype as unknown as Record<symbol, boolean>)[PATCHED]) return;
  const original = Queue.prototype.writeBuffer;
  const shared = typeof SharedArrayBuffer !== 'undefined' ? SharedArrayBuffer : null;
  // Offsets and sizes are in elements for views and in bytes for buffers: keep both forms.
  function writeBuffer(
    this: GPUQueue,
    buffer: GPUBuffer,
    bufferOffset: number,
    data: BufferSource | SharedArrayBuffer,
    dataOffset?: number,
    size?: number,
  ): void {
    if (shared && ArrayBuffer.isView(data) && data.buffer instanceof shared) {
      const copy = (data as unknown as { slice(): ArrayBufferView }).slice();
      return original.call(this, buffer, bufferOffset, copy as BufferSource, dataOffset, size);
    }
    if (shared && data instanceof shared) {
      const from = dataOffset ?? 0;
      const copy = new Uint8Array(data, from, size ?? data.byteLength - from).slice();
      return original.call(this, buffer, bufferOffset, copy);
    }
    return original.call(this, buffer, bufferOffset, data as BufferSource, dataOffset, size);
  }
  Object.defineProperty(Queue.prototype, 'writeBuffer', { value: writeBuffer, configurable: true, writable: true });
  Object.defineProperty(Queue.prototype, PATCHED, { value: true });
}

/** Whether ORT's WebGPU EP can run here (navigator.gpu present, or installable in Node). */
export async function ortWebGpuAvailable(): Promise<boolean> {
  if (isNode()) return prepareNodeWebGpu();
  return typeof navigator !== 'undefined' && !!(navigator as { gpu?: GPU }).gpu;
}

export class OrtSession {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtModule.InferenceSession,
    /** The provider the session runs on. */
    readonly backend: OrtBackend,
    /** Why WebGPU was not used, when 'auto' fell back to wasm. */
    readonly fallbackReason: string | null,
    private readonly outputsOnGpu: boolean,
  ) {}

  /** Create a session from ONNX bytes. */
  static async create(model: Uint8Array, options: OrtSessionOptions = {}): Promise<OrtSession> {
    const ort = await loadOrt();
    const wanted = options.backend ?? 'auto';
    let fallbackReason: string | null = null;
    if (wanted !== 'wasm') {
      const available = await ortWebGpuAvailable();
      if (available) {
        try {
          const session = await ort.InferenceSession.create(model, sessionOptions(options, 'webgpu'));
          return new OrtSession(ort, session, 'webgpu', null, !!options.outputsOnGpu);
        } catch (e) {
          if (wanted === 'webgpu') throw e;
          fallbackReason = e instanceof Error ? e.message : String(e);
        }
      } else {
        if (wanted === 'webgpu') throw new Error('onnxruntime-web: WebGPU is not available here');
        fallbackReason = 'WebGPU is not available';
      }
    }
    if (options.outputsOnGpu && wanted === 'wasm') throw new Error('OrtSession: outputsOnGpu needs the WebGPU backend');
    const session = await ort.InferenceSession.create(model, sessionOptions(options, 'wasm'));
    return new OrtSession(ort, session, 'wasm', fallbackReason, false);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Run with float32 (or integer id) inputs from the CPU; outputs come back to the CPU. */
  async run(feeds: Readonly<Record<string, OrtArray | OrtIntArray>>): Promise<Record<string, OrtArray>> {
    if (this.outputsOnGpu) throw new Error('OrtSession.run: this session keeps outputs on the GPU; use runGpu()');
    const inputs: Record<string, OrtModule.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      const d = t.data;
      inputs[name] =
        d instanceof BigInt64Array
          ? new this.ort.Tensor('int64', d, [...t.dims])
          : d instanceof Int32Array
            ? new this.ort.Tensor('int32', d, [...t.dims])
            : new this.ort.Tensor('float32', d, [...t.dims]);
    }
    const results = await this.session.run(inputs);
    const out: Record<string, OrtArray> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.type !== 'float32') throw new Error(`OrtSession.run: output '${name}' is ${t.type}, not float32`);
      out[name] = { data: (await t.getData()) as Float32Array, dims: t.dims };
      t.dispose();
    }
    return out;
  }

  /**
   * Run on GPU buffers of the session's device (WebGPU, created with `device` and
   * `outputsOnGpu`): no copies to or from the CPU. ORT may not have finished when this
   * resolves; wait on the device queue before reading or timing.
   */
  async runGpu(feeds: Readonly<Record<string, OrtGpuArray>>): Promise<Record<string, OrtGpuOutput>> {
    if (!this.outputsOnGpu) throw new Error('OrtSession.runGpu: create the session with outputsOnGpu (WebGPU)');
    const inputs: Record<string, OrtModule.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      inputs[name] = this.ort.Tensor.fromGpuBuffer(t.buffer, { dataType: 'float32', dims: [...t.dims] });
    }
    const results = await this.session.run(inputs);
    const out: Record<string, OrtGpuOutput> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.location !== 'gpu-buffer') throw new Error(`OrtSession.runGpu: output '${name}' is on ${t.location}`);
      out[name] = { buffer: t.gpuBuffer, dims: t.dims, dispose: () => t.dispose() };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function sessionOptions(o: OrtSessionOptions, backend: OrtBackend): SessionOptions {
  const opts: SessionOptions = {
    executionProviders: backend === 'webgpu' ? [o.device ? { name: 'webgpu', device: o.device } : 'webgpu'] : ['wasm'],
    graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
    logSeverityLevel: 3,
  };
  if (o.externalData) opts.externalData = o.externalData.map((f) => ({ path: f.path, data: f.data }));
  if (backend === 'webgpu' && o.outputsOnGpu) opts.preferredOutputLocation = 'gpu-buffer';
  if (backend === 'webgpu' && o.gpuOnly) opts.extra = { session: { disable_cpu_ep_fallback: '1' } };
  return opts;
}
