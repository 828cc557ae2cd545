import type { DType } from './dtype.ts';
import { bytesPerElement } from './dtype.ts';
import type { Engine } from './engine.ts';
import type { TapeNode } from './tape.ts';

/**
 * Reference-counted GPU memory. Several tensors may share one storage (reshape views,
 * the detached inputs of a checkpointed segment) and the tape keeps storages alive for
 * backward after their tensors were disposed.
 */
export class Storage {
  private refs = 1;
  constructor(
    private readonly engine: Engine,
    private gpuBuffer: GPUBuffer | null,
    readonly byteLength: number,
  ) {}

  get buffer(): GPUBuffer {
    if (!this.gpuBuffer) throw new Error('use of a freed GPU buffer (tensor disposed and not saved)');
    return this.gpuBuffer;
  }

  get alive(): boolean {
    return this.gpuBuffer !== null;
  }

  retain(): void {
    if (!this.gpuBuffer) throw new Error('retain of a freed storage');
    this.refs++;
  }

  release(): void {
    if (!this.gpuBuffer) return;
    if (--this.refs === 0) {
      this.engine.pool.release(this.gpuBuffer);
      this.gpuBuffer = null;
    }
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient (leaves only: parameters and inputs that require grad). */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor; null for leaves. */
  node: TapeNode | null = null;
  name: string | undefined;
  private disposedFlag = false;

  constructor(
    readonly engine: Engine,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly storage: Storage,
    /**
     * Where this tensor starts in its storage (bytes): nonzero only for the sub-range views
     * that ops split into when a whole tensor would exceed the binding limit (Engine.view).
     */
    readonly byteOffset = 0,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
    if (storage.byteLength < byteOffset + this.size * bytesPerElement(dtype)) {
      throw new Error(`storage of ${storage.byteLength} bytes too small for ${dtype}[${shape}] at byte ${byteOffset}`);
    }
  }

  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }

  /** Bytes of the buffer from this tensor's start on (what a binding of it may cover). */
  get bytesAvailable(): number {
    return this.storage.buffer.size - this.byteOffset;
  }

  get rank(): number {
    return this.shape.length;
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** Drop this handle. The memory is freed once nothing (tape, views) still needs it. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.grad?.dispose();
    this.grad = null;
    this.storage.release();
  }

  /** Copy to the CPU as float32 (fp16 is widened). */
  read(): Promise<Float32Array> {
    return this.engine.read(this);
  }

  /** A view with another shape over the same memory (no copy). */
  reshape(shape: readonly number[]): Tensor {
    return this.engine.reshape(this, shape);
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}[${this.shape.join(',')}]${this.requiresGrad ? ', grad' : ''})`;
  }
}

export const shapeSize = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function assertShape(t: Tensor, rank: number, what: string): void {
  if (t.rank !== rank) throw new Error(`${what}: expected rank ${rank}, got [${t.shape.join(',')}]`);
}
