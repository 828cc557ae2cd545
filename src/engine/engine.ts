// The engine: one GPUDevice, a buffer pool, a batched command stream, scopes that free
// what a computation no longer needs, and the autograd tape.
import { BufferPool } from './buffer-pool.ts';
import { accumulateKernel, castKernel, ELEMENTWISE_WG, fillKernel } from './builtin-kernels.ts';
import { bytesPerElement, fromF16Array, toF16Array, type DType } from './dtype.ts';
import { halfStorageVariant, isF32Binding } from './half-storage.ts';
import { requestGpu, type Gpu, type GpuInfo, type GpuOptions } from './gpu.ts';
import { f32, grid1d, packParams, u32, type KernelDef, type Param } from './kernel.ts';
import { releaseNode, runBackward, type TapeNode } from './tape.ts';
import { Storage, Tensor, shapeSize } from './tensor.ts';
import { InternalError, LikenessError, OutOfMemoryError } from '../domain/errors.ts';

export class DeviceLostError extends LikenessError {
  readonly kind = 'device-lost';
  constructor(readonly reason: string) {
    super(`the GPU device was lost (${reason}); reload the models to continue — stored data is safe`);
    this.name = 'DeviceLostError';
  }
}

export class GpuValidationError extends InternalError {
  constructor(message: string) {
    super(message);
    this.name = 'GpuValidationError';
  }
}

/**
 * A dispatch would bind more bytes than the device allows (maxStorageBufferBindingSize, or
 * the engine's lower test limit): thrown before anything is encoded, naming the kernel, the
 * shapes of its bindings, the offending binding's size and the limit.
 */
export class BindingLimitError extends InternalError {
  constructor(message: string) {
    super(message);
    this.name = 'BindingLimitError';
  }
}

/** The device refused an allocation (a GPUOutOfMemoryError caught in an error scope or uncaptured). */
export class GpuOutOfMemoryError extends OutOfMemoryError {
  constructor(message: string) {
    super(message);
    this.name = 'GpuOutOfMemoryError';
  }
}

/** A GPUError kept until the next dispatch or read; its type decides what is thrown then. */
interface PendingGpuError {
  message: string;
  outOfMemory: boolean;
}

// Dawn in Node and browsers without WebGPU may not define the class.
const isOutOfMemory = (e: GPUError): boolean =>
  typeof GPUOutOfMemoryError !== 'undefined' && e instanceof GPUOutOfMemoryError;

/** A byte range of a tensor's memory bound to one storage binding (offsets: see Engine.bindingAlignment). */
export interface BufferSlice {
  tensor: Tensor;
  /** Bytes from the start of the tensor's buffer; a multiple of Engine.bindingAlignment. */
  offset: number;
  /** Bytes; a multiple of 4. */
  size: number;
}

/** What one storage binding of a dispatch may be. */
export type Binding = Tensor | GPUBuffer | BufferSlice;

export interface EngineOptions {
  /**
   * Bind at most this many bytes per storage binding, below the device's own
   * maxStorageBufferBindingSize: lets tests make small shapes split their work as real
   * model sizes do on real limits.
   */
  maxBindingBytes?: number;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const UNIFORM_ARENA_BYTES = 64 * 1024;
const UNIFORM_SLOT_ALIGN = 256;
const MAX_DISPATCHES_PER_SUBMIT = 128;

// What a scope may return: any value; the Tensors in it, inside arrays and plain objects at any
// depth, are kept (anything else is ignored), so its type is `unknown`.
type TensorTree = unknown;

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  name?: string;
}

export class Engine {
  readonly pool: BufferPool;
  /** Current tape (replaced while a checkpointed segment is recomputed). */
  tape: TapeNode[] = [];
  private gradEnabled = true;
  private readonly scopes: Set<Tensor>[] = [];
  private readonly pipelines = new Map<string, CachedPipeline>();

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformArena = new ArrayBuffer(UNIFORM_ARENA_BYTES);
  private readonly uniformView = new DataView(this.uniformArena);
  private uniformOffset = 0;

  private lostReason: string | null = null;
  private firstError: PendingGpuError | null = null;
  /** Pipelines whose first dispatch ran inside its own error scope. */
  private readonly checkedPipelines = new Set<GPUComputePipeline>();
  private bindingLimitOverride: number | undefined;
  /** The limit given at creation, which setBindingLimit(undefined) returns to. */
  private readonly baseBindingLimit: number | undefined;
  /** Dispatches issued since creation (benchmarks and tests read it). */
  dispatchCount = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly info: GpuInfo,
    options: EngineOptions = {},
  ) {
    this.setBindingLimit(options.maxBindingBytes);
    this.baseBindingLimit = this.bindingLimitOverride;
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    this.uniformBuffer = device.createBuffer({
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    // `lost` never rejects: it resolves once, when the device goes away.
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    device.onuncapturederror = (event) => {
      this.firstError ??= { message: event.error.message, outOfMemory: isOutOfMemory(event.error) };
    };
  }

  static async create(options?: GpuOptions & EngineOptions): Promise<Engine> {
    const gpu: Gpu = await requestGpu(options);
    return new Engine(gpu.device, gpu.info, options);
  }

  static fromDevice(device: GPUDevice, info: GpuInfo, options?: EngineOptions): Engine {
    return new Engine(device, info, options);
  }

  // ---------------------------------------------------------------- limits

  /**
   * The most bytes one storage binding may cover. Every op that splits its work reads the
   * limit here, so a test can lower it (setBindingLimit) and see every split path run.
   */
  get maxBindingBytes(): number {
    const device = this.device.limits.maxStorageBufferBindingSize;
    return this.bindingLimitOverride === undefined ? device : Math.min(device, this.bindingLimitOverride);
  }

  /** The largest buffer the device can create (maxBufferSize). */
  get maxBufferBytes(): number {
    return this.device.limits.maxBufferSize;
  }

  /** Bytes a BufferSlice offset must be a multiple of (minStorageBufferOffsetAlignment). */
  get bindingAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment;
  }

  /**
   * Lower the binding limit below the device's (undefined: back to the one given at
   * creation, else the device's). Tests use it to run small shapes through the same splits
   * that real sizes take.
   */
  setBindingLimit(bytes: number | undefined): void {
    if (bytes !== undefined && (!Number.isInteger(bytes) || bytes < 256 || bytes % 4 !== 0)) {
      throw new RangeError(`maxBindingBytes must be a multiple of 4 of at least 256, got ${bytes}`);
    }
    this.bindingLimitOverride = bytes ?? this.baseBindingLimit;
  }

  /**
   * How many units of `unitBytes` one binding may hold so that consecutive chunks start at
   * aligned offsets: at most `maxBindingBytes` and a multiple of alignment/gcd. Throws a
   * BindingLimitError naming `what` when not even one aligned chunk fits.
   */
  chunkUnits(total: number, unitBytes: number, what: string): number {
    const limit = this.maxBindingBytes;
    if (total * unitBytes <= limit) return Math.max(1, total);
    const align = this.bindingAlignment;
    const step = align / gcd(unitBytes, align);
    const units = Math.floor(limit / unitBytes / step) * step;
    if (units < 1) {
      throw new BindingLimitError(
        `${what}: one aligned chunk of ${step} × ${unitBytes} bytes exceeds the storage binding limit of ${limit} bytes`,
      );
    }
    return units;
  }

  /**
   * Call fn(start, count) over consecutive ranges of `total` units of `unitBytes` each, every
   * range small enough for one binding and starting at an aligned offset (see chunkUnits).
   */
  forEachChunk(total: number, unitBytes: number, what: string, fn: (start: number, count: number) => void): void {
    const step = this.chunkUnits(total, unitBytes, what);
    for (let start = 0; start < total; start += step) fn(start, Math.min(step, total - start));
  }

  /** A sub-range binding of `t`: `count` elements from element `start`. */
  slice(t: Tensor, start: number, count: number): BufferSlice {
    const bpe = bytesPerElement(t.dtype);
    const offset = start * bpe;
    const size = Math.ceil((count * bpe) / 4) * 4;
    return { tensor: t, offset, size: Math.min(size, t.bytesAvailable - offset) };
  }

  get f16(): boolean {
    return this.info.f16;
  }

  // ---------------------------------------------------------------- tensors

  /** Upload data as a new tensor (tracked by the current scope). */
  tensor(data: ArrayLike<number>, shape: readonly number[], options: TensorOptions = {}): Tensor {
    const dtype = options.dtype ?? 'f32';
    const n = shapeSize(shape);
    if (data.length !== n) throw new Error(`tensor: ${data.length} values for shape [${shape.join(',')}]`);
    const t = this.empty(shape, dtype);
    this.write(t, data);
    t.requiresGrad = options.requiresGrad ?? false;
    t.name = options.name;
    return t;
  }

  /** A trainable leaf: requiresGrad, not tracked by scopes (dispose it yourself). */
  parameter(data: ArrayLike<number>, shape: readonly number[], name?: string, dtype: DType = 'f32'): Tensor {
    const t = this.tensor(data, shape, { dtype, requiresGrad: true, name });
    return this.keep(t);
  }

  /** Uninitialised tensor. `exact`: a buffer of its own exact size (long-lived weights; see BufferPool.acquire). */
  empty(shape: readonly number[], dtype: DType = 'f32', exact = false): Tensor {
    this.checkAlive();
    const bytes = shapeSize(shape) * bytesPerElement(dtype);
    const storage = new Storage(this, this.pool.acquire(bytes, exact), bytes);
    return this.track(new Tensor(this, [...shape], dtype, storage));
  }

  zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    return this.full(shape, 0, dtype);
  }

  full(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    this.fill(t, value);
    return t;
  }

  fill(t: Tensor, value: number): void {
    this.forEachChunk(t.size, bytesPerElement(t.dtype), 'fill', (start, n) =>
      this.dispatch(fillKernel(t.dtype), [this.slice(t, start, n)], grid1d(n, ELEMENTWISE_WG), [u32(n), f32(value)]),
    );
  }

  /** Overwrite a tensor's contents from the CPU. */
  write(t: Tensor, data: ArrayLike<number>): void {
    if (data.length !== t.size) throw new Error(`write: ${data.length} values into ${t}`);
    // Queue writes run before commands still being recorded: submit those first, so a
    // recycled buffer is not overwritten while an earlier command still reads it.
    this.flush();
    const src = t.dtype === 'f16' ? toF16Array(data) : Float32Array.from(data);
    const padded = Math.ceil(src.byteLength / 4) * 4;
    const bytes = new Uint8Array(padded);
    bytes.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    this.device.queue.writeBuffer(t.buffer, t.byteOffset, bytes);
  }

  /**
   * Write raw little-endian bytes of t's dtype at `byteOffset` (a multiple of 4): streamed
   * weight uploads, one chunk at a time, with no fp32 copy of fp16 data on the CPU.
   */
  writeBytes(t: Tensor, bytes: Uint8Array, byteOffset = 0): void {
    if (byteOffset % 4 !== 0 || byteOffset + bytes.length > t.byteLength) {
      throw new Error(`writeBytes: ${bytes.length} bytes at offset ${byteOffset} into ${t} (${t.byteLength} bytes)`);
    }
    this.flush(); // as in write(): commands recorded earlier may still read a recycled buffer
    let src = bytes;
    if (src.length % 4 !== 0) {
      // writeBuffer moves whole words; the tensor's buffer is at least that large (pool size classes).
      src = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
      src.set(bytes);
    }
    this.device.queue.writeBuffer(t.buffer, byteOffset, src.buffer, src.byteOffset, src.byteLength);
  }

  async read(t: Tensor): Promise<Float32Array> {
    this.checkAlive();
    const bytes = Math.ceil(t.byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.flush();
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.checkAlive();
      throw e;
    }
    this.throwPendingError();
    const copy = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    return t.dtype === 'f16' ? fromF16Array(new Uint16Array(copy, 0, t.size)) : new Float32Array(copy, 0, t.size);
  }

  /** A same-memory view with another shape; on the tape when the source requires grad. */
  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, t.size);
    t.storage.retain();
    const view = this.track(new Tensor(this, resolved, t.dtype, t.storage, t.byteOffset));
    // The tape reshapes gradients back to each input's shape, so dY passes through.
    this.record('reshape', [t], view, [], (dY) => [dY]);
    return view;
  }

  /** Reshape that consumes its argument (no tape): for gradients the engine owns. */
  reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
    t.storage.retain();
    const view = this.track(new Tensor(this, resolveShape(shape, t.size), t.dtype, t.storage, t.byteOffset));
    t.dispose();
    return view;
  }

  /** A copy in new memory: a buffer-to-buffer copy in the command stream, not a kernel. */
  copy(t: Tensor): Tensor {
    this.checkAlive();
    const y = this.empty(t.shape, t.dtype);
    const bytes = Math.ceil(t.byteLength / 4) * 4;
    if (bytes === 0) return y;
    this.encoder ??= this.device.createCommandEncoder();
    // Copies cannot be recorded inside a compute pass: close it; the next dispatch opens another.
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(t.buffer, t.byteOffset, y.buffer, 0, bytes);
    if (++this.pendingDispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    return y;
  }

  /**
   * Copy `count` elements of `src` from element `srcAt` into `dst` from element `at` (a
   * buffer copy: no binding limit applies). Ops that split their work use it to assemble
   * a big output from chunks. Both byte ranges must be 4-byte aligned.
   */
  copyInto(dst: Tensor, at: number, src: Tensor, srcAt = 0, count = src.size - srcAt): void {
    this.checkAlive();
    const bpe = bytesPerElement(dst.dtype);
    if (src.dtype !== dst.dtype || at < 0 || srcAt < 0 || at + count > dst.size || srcAt + count > src.size) {
      throw new RangeError(`copyInto: ${count} elements of ${src} from ${srcAt} do not fit in ${dst} at ${at}`);
    }
    const to = dst.byteOffset + at * bpe;
    const from = src.byteOffset + srcAt * bpe;
    const bytes = count * bpe;
    if (to % 4 !== 0 || from % 4 !== 0 || bytes % 4 !== 0) {
      throw new RangeError(
        `copyInto: ${count} elements of ${src} from ${srcAt} into ${dst} at ${at} are not 4-byte aligned`,
      );
    }
    if (bytes === 0) return;
    this.encoder ??= this.device.createCommandEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(src.buffer, from, dst.buffer, to, bytes);
    if (++this.pendingDispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
  }

  /**
   * A view of `count`-element range of `t` from element `start`, with `shape` (default
   * [count]), sharing its memory; not on the tape (a split op's inputs and outputs, whose
   * gradient the op itself handles). The start must fall on a binding alignment.
   */
  view(t: Tensor, start: number, shape: readonly number[]): Tensor {
    const offset = t.byteOffset + start * bytesPerElement(t.dtype);
    if (offset % this.bindingAlignment !== 0) {
      throw new RangeError(`view: element ${start} of ${t} is not at a ${this.bindingAlignment}-byte aligned offset`);
    }
    if (start < 0 || start + shapeSize(shape) > t.size) {
      throw new RangeError(`view: [${shape.join(',')}] from element ${start} is outside ${t}`);
    }
    t.storage.retain();
    return this.track(new Tensor(this, [...shape], t.dtype, t.storage, offset));
  }

  /** Copy into a new tensor of `dtype` (no tape: casts are for storage, not for training). */
  cast(t: Tensor, dtype: DType): Tensor {
    const y = this.empty(t.shape, dtype);
    const widest = Math.max(bytesPerElement(t.dtype), bytesPerElement(dtype));
    this.forEachChunk(t.size, widest, 'cast', (start, n) =>
      this.dispatch(
        castKernel(t.dtype, dtype),
        [this.slice(t, start, n), this.slice(y, start, n)],
        grid1d(n, ELEMENTWISE_WG),
        [u32(n)],
      ),
    );
    return y;
  }

  /** y += x, in place. */
  accumulate(y: Tensor, x: Tensor): void {
    if (y.size !== x.size || y.dtype !== x.dtype) throw new Error(`accumulate: ${y} += ${x}`);
    this.forEachChunk(y.size, bytesPerElement(y.dtype), 'accumulate', (start, n) =>
      this.dispatch(
        accumulateKernel(y.dtype),
        [this.slice(y, start, n), this.slice(x, start, n)],
        grid1d(n, ELEMENTWISE_WG),
        [u32(n)],
      ),
    );
  }

  // ---------------------------------------------------------------- scopes

  /**
   * Run `fn`; every tensor it creates is disposed at the end except those in its result
   * (which move to the enclosing scope) and those passed to keep().
   */
  scope<T>(fn: () => T): T {
    const tracked = new Set<Tensor>();
    this.scopes.push(tracked);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.scopes.pop();
      for (const t of tracked) t.dispose();
      throw e;
    }
    this.scopes.pop();
    if (result instanceof Promise) {
      throw new Error('engine.scope() got an async function; use scopeAsync()');
    }
    this.endScope(tracked, result);
    return result;
  }

  /** scope() for async work. Do not interleave two scopeAsync() calls on one engine. */
  async scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
    const tracked = new Set<Tensor>();
    this.scopes.push(tracked);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.scopes.splice(this.scopes.lastIndexOf(tracked), 1);
      for (const t of tracked) t.dispose();
      throw e;
    }
    this.scopes.splice(this.scopes.lastIndexOf(tracked), 1);
    this.endScope(tracked, result);
    return result;
  }

  private endScope(tracked: Set<Tensor>, result: unknown): void {
    const keep = new Set<Tensor>();
    collectTensors(result, keep);
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of tracked) {
      if (keep.has(t)) parent?.add(t);
      else t.dispose();
    }
  }

  /** Exempt a tensor from scope cleanup; the caller must dispose it. */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  /** Put a kept tensor back under the current scope (the reverse of keep()). */
  adopt<T extends Tensor>(t: T): T {
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  private track(t: Tensor): Tensor {
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  // ---------------------------------------------------------------- autograd

  get isGradEnabled(): boolean {
    return this.gradEnabled;
  }

  noGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = false;
    try {
      return fn();
    } finally {
      this.gradEnabled = prev;
    }
  }

  /** Turn gradient recording back on inside a noGrad region (checkpoint recomputation). */
  withGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = true;
    try {
      return fn();
    } finally {
      this.gradEnabled = prev;
    }
  }

  /** A new leaf sharing `t`'s memory: the start of a fresh graph. */
  alias(t: Tensor, requiresGrad = false): Tensor {
    t.storage.retain();
    const a = this.track(new Tensor(this, t.shape, t.dtype, t.storage, t.byteOffset));
    a.requiresGrad = requiresGrad;
    return a;
  }

  /** Append a prepared node (checkpoint); retains its saved tensors. */
  pushNode(node: TapeNode): void {
    for (const t of node.saved) t.storage.retain();
    node.output.requiresGrad = true;
    node.output.node = node;
    this.tape.push(node);
  }

  /**
   * Called by every differentiable op after its forward. Records a tape node when
   * gradients are on and some input requires them; `saved` stays alive until backward.
   */
  record(
    name: string,
    inputs: readonly Tensor[],
    output: Tensor,
    saved: readonly Tensor[],
    backward: (dY: Tensor) => (Tensor | null)[],
  ): void {
    if (!this.gradEnabled || !inputs.some((x) => x.requiresGrad)) return;
    this.pushNode({ name, inputs, output, saved, backward });
  }

  /**
   * Backpropagate from `y` (a scalar unless `dY` is given) through the current tape, then
   * clear it. Leaves that require grad get `.grad` (accumulated across calls until zeroed).
   */
  backward(y: Tensor, dY?: Tensor): void {
    if (!y.requiresGrad) throw new Error('backward: the tensor does not depend on anything that requires grad');
    if (!dY && y.size !== 1) throw new Error(`backward: ${y} is not a scalar; pass dY`);
    const seed = dY ? this.copy(dY) : this.full(y.shape, 1, y.dtype);
    const nodes = this.tape;
    this.tape = [];
    this.scope(() => runBackward(this, nodes, new Map([[y, seed]])));
  }

  /** Drop the tape without backward (e.g. after an evaluation forward). */
  clearTape(): void {
    for (const node of this.tape) releaseNode(node);
    this.tape = [];
  }

  accumulateLeafGrad(x: Tensor, dX: Tensor): void {
    if (x.grad) {
      this.accumulate(x.grad, dX);
      dX.dispose();
    } else {
      x.grad = this.keep(dX);
    }
  }

  // ---------------------------------------------------------------- dispatch

  private pipeline(kernel: KernelDef): CachedPipeline {
    let cached = this.pipelines.get(kernel.code);
    if (cached) return cached;
    const entries: GPUBindGroupLayoutEntry[] = kernel.storage.map((access, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (kernel.uniforms) {
      entries.push({ binding: kernel.storage.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    // Errors in a kernel's WGSL or layout surface at the next read()/sync(), named.
    this.device.pushErrorScope('validation');
    const layout = this.device.createBindGroupLayout({ label: kernel.name, entries });
    const module = this.device.createShaderModule({ label: kernel.name, code: kernel.code });
    const pipeline = this.device.createComputePipeline({
      label: kernel.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: kernel.entryPoint ?? 'main' },
    });
    void this.device.popErrorScope().then((error) => {
      if (error) this.firstError ??= { message: `${kernel.name}: ${error.message}`, outOfMemory: isOutOfMemory(error) };
    });
    cached = { pipeline, layout };
    this.pipelines.set(kernel.code, cached);
    return cached;
  }

  /** Compile a kernel now and report WGSL errors with line numbers (tests, startup). */
  async compile(kernel: KernelDef): Promise<void> {
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: kernel.name, code: kernel.code });
    const info = await module.getCompilationInfo();
    await this.device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new GpuValidationError(
        `${kernel.name}: ${errors.map((m) => `line ${m.lineNum}:${m.linePos} ${m.message}`).join('; ')}`,
      );
    }
    this.pipeline(kernel);
    await this.sync();
  }

  /**
   * Record one dispatch into the current batch. Each binding is a whole tensor, a raw
   * buffer or a BufferSlice; none may exceed maxBindingBytes (checked before encoding, so
   * the error names this kernel and not a later read). A GPU error still pending from
   * earlier work is thrown here, so a failed computation stops queuing work.
   */
  dispatch(
    kernel: KernelDef,
    buffers: readonly Binding[],
    workgroups: readonly [number, number?, number?],
    params: readonly Param[] = [],
  ): void {
    this.checkAlive();
    this.throwPendingError();
    if (buffers.length !== kernel.storage.length) {
      throw new Error(`${kernel.name}: ${buffers.length} buffers for ${kernel.storage.length} bindings`);
    }
    if (kernel.uniforms !== params.length > 0) {
      throw new Error(`${kernel.name}: params ${kernel.uniforms ? 'missing' : 'not expected'}`);
    }
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    kernel = this.halfStorage(kernel, buffers);
    const resources = buffers.map((b) => this.bindingResource(b));
    this.checkBindings(kernel, buffers, resources);
    const { pipeline, layout } = this.pipeline(kernel);
    // The first run of each pipeline goes in its own submission inside error scopes, so a
    // validation or out-of-memory error there is pinned to this kernel and its shapes and
    // thrown by the next dispatch or read instead of after minutes of queued work.
    const firstRun = !this.checkedPipelines.has(pipeline);
    if (firstRun) {
      this.checkedPipelines.add(pipeline);
      this.flush();
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
    }
    if (kernel.uniforms && this.uniformOffset + UNIFORM_SLOT_ALIGN > UNIFORM_ARENA_BYTES) this.flush();
    const entries: GPUBindGroupEntry[] = resources.map((resource, binding) => ({ binding, resource }));
    if (kernel.uniforms) {
      const size = packParams(params, this.uniformView, this.uniformOffset);
      entries.push({
        binding: buffers.length,
        resource: { buffer: this.uniformBuffer, offset: this.uniformOffset, size },
      });
      this.uniformOffset += Math.ceil(size / UNIFORM_SLOT_ALIGN) * UNIFORM_SLOT_ALIGN;
    }
    const bindGroup = this.device.createBindGroup({ layout, entries });
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount++;
    if (firstRun) {
      this.flush();
      const where = () => `${kernel.name} (${describeBindings(buffers)})`;
      const record = (error: GPUError | null) => {
        if (error) this.firstError ??= { message: `${where()}: ${error.message}`, outOfMemory: isOutOfMemory(error) };
      };
      void this.device.popErrorScope().then(record, () => {});
      void this.device.popErrorScope().then(record, () => {});
      return;
    }
    if (++this.pendingDispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
  }

  /**
   * The kernel with its f32 bindings that hold fp16 tensors stored as f16 (half-storage.ts).
   * Without shader-f16 nothing is rewritten: ops refuse fp16 activations there
   * (activationDtype), and an fp16 tensor in an f32 slot is then only a placeholder that the
   * kernel does not read (conv2d binds its weight as the absent bias).
   */
  private halfStorage(kernel: KernelDef, buffers: readonly Binding[]): KernelDef {
    if (!this.f16) return kernel;
    let half: number[] | null = null;
    buffers.forEach((b, i) => {
      const t = b instanceof Tensor ? b : 'tensor' in b ? b.tensor : null;
      if (t?.dtype === 'f16' && isF32Binding(kernel, i)) (half ??= []).push(i);
    });
    return half ? halfStorageVariant(kernel, half) : kernel;
  }

  private bindingResource(b: Binding): GPUBufferBinding {
    if (b instanceof Tensor) {
      // Bind the tensor's bytes, not its whole pool buffer (the size class may be up to 25 %
      // larger), rounded to 16 so vec4 views of the last elements stay in range.
      const size = Math.min(b.bytesAvailable, Math.max(16, Math.ceil(b.byteLength / 16) * 16));
      return { buffer: b.buffer, offset: b.byteOffset, size };
    }
    if ('tensor' in b) {
      const buffer = b.tensor.buffer;
      const base = b.tensor.byteOffset;
      if (b.offset % this.bindingAlignment !== 0 || b.size % 4 !== 0 || b.size <= 0) {
        throw new RangeError(
          `binding slice at offset ${b.offset} of ${b.size} bytes: the offset must be a multiple of ` +
            `${this.bindingAlignment} and the size a positive multiple of 4`,
        );
      }
      if (base + b.offset + b.size > buffer.size) {
        throw new RangeError(`binding slice [${b.offset}, ${b.offset + b.size}) is past the end of ${b.tensor}`);
      }
      return { buffer, offset: base + b.offset, size: b.size };
    }
    return { buffer: b, offset: 0, size: b.size };
  }

  private checkBindings(kernel: KernelDef, buffers: readonly Binding[], resources: readonly GPUBufferBinding[]): void {
    const limit = this.maxBindingBytes;
    resources.forEach((r, i) => {
      if ((r.size ?? 0) > limit) {
        const device = this.device.limits.maxStorageBufferBindingSize;
        throw new BindingLimitError(
          `${kernel.name}: binding ${i} (${describeBinding(buffers[i])}) is ${r.size} bytes, above the ` +
            `storage binding limit of ${limit} bytes` +
            (limit < device ? ` (lowered from the device's ${device})` : ' (maxStorageBufferBindingSize)') +
            `; bindings: ${describeBindings(buffers)}`,
        );
      }
    });
  }

  /** Submit everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    this.pass = null;
    if (this.uniformOffset > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformArena, 0, this.uniformOffset);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pass = null;
    this.pendingDispatches = 0;
    this.uniformOffset = 0;
  }

  /** Wait until the GPU has finished all submitted work; throws a pending GPU error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkAlive();
    this.throwPendingError();
  }

  private throwPendingError(): void {
    if (this.firstError) {
      const { message, outOfMemory } = this.firstError;
      this.firstError = null;
      if (outOfMemory) throw new GpuOutOfMemoryError(`GPU out of memory: ${message}`);
      throw new GpuValidationError(`GPU error: ${message}`);
    }
  }

  private checkAlive(): void {
    if (this.lostReason) throw new DeviceLostError(this.lostReason);
  }

  get isLost(): boolean {
    return this.lostReason !== null;
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    this.uniformBuffer.destroy();
    this.device.destroy();
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function describeBinding(b: Binding): string {
  if (b instanceof Tensor) return `${b.dtype}[${b.shape.join(',')}]`;
  if ('tensor' in b) return `${b.tensor.dtype}[${b.tensor.shape.join(',')}] bytes ${b.offset}+${b.size}`;
  return `buffer of ${b.size} bytes`;
}

function describeBindings(buffers: readonly Binding[]): string {
  return buffers.map(describeBinding).join(', ');
}

function resolveShape(shape: readonly number[], size: number): number[] {
  const out = [...shape];
  const inferred = out.indexOf(-1);
  if (inferred >= 0) {
    const rest = out.reduce((a, b, i) => (i === inferred ? a : a * b), 1);
    out[inferred] = size / rest;
  }
  if (shapeSize(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view ${size} elements as [${shape.join(',')}]`);
  }
  return out;
}

function collectTensors(value: TensorTree, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}
