// GPU buffers are expensive to create and the tuning loop allocates the same shapes every
// step, so released buffers go to free lists keyed by size class and are handed out again.
// The statistics are what tests use to prove that nothing leaks and that no kernel
// allocates an N×N intermediate.

// GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST, as numbers so this module can load before
// Node has installed the WebGPU globals.
export const STORAGE_USAGE = 0x80 | 0x04 | 0x08;

/** Size classes: 256-byte minimum, then four steps per power of two (≤ 25 % waste). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 4;
  const cls = Math.ceil(bytes / step) * step;
  return Math.ceil(cls / 256) * 256;
}

export interface PoolStats {
  /** Bytes (by size class) currently handed out. */
  liveBytes: number;
  /** Highest liveBytes since creation or resetPeak(). */
  peakLiveBytes: number;
  /** Largest single buffer handed out since creation or resetPeak(). */
  largestBufferBytes: number;
  /** Bytes sitting in free lists. */
  freeBytes: number;
  /** Bytes of all GPU buffers the pool owns (live + free). */
  allocatedBytes: number;
  liveBuffers: number;
  acquires: number;
  /** Buffers created on the device (acquires that missed the free lists). */
  creations: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly live = new Set<GPUBuffer>();
  private readonly exact = new Set<GPUBuffer>();
  private stats: PoolStats = {
    liveBytes: 0,
    peakLiveBytes: 0,
    largestBufferBytes: 0,
    freeBytes: 0,
    allocatedBytes: 0,
    liveBuffers: 0,
    acquires: 0,
    creations: 0,
  };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
  ) {}

  /**
   * A buffer of at least `bytes`. `exact`: sized to the 4-aligned byte count instead of the
   * size class, and destroyed on release rather than kept for reuse — for long-lived tensors
   * such as model weights, where the classes' rounding (13 % over SD 1.5's UNet) is pure waste.
   */
  acquire(bytes: number, exact = false): GPUBuffer {
    if (bytes > this.maxBufferSize) {
      throw new RangeError(
        `buffer of ${bytes} bytes exceeds the adapter's maxBufferSize (${this.maxBufferSize}); ` +
          'the op must split this tensor',
      );
    }
    // Near the limit the size class may round past it: use the exact (4-aligned) size then.
    let size = exact ? Math.ceil(Math.max(bytes, 4) / 4) * 4 : sizeClass(Math.max(bytes, 4));
    if (size > this.maxBufferSize) size = Math.ceil(bytes / 4) * 4;
    const s = this.stats;
    s.acquires++;
    let buffer = exact ? undefined : this.free.get(size)?.pop();
    if (buffer) {
      s.freeBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      s.creations++;
      s.allocatedBytes += size;
    }
    this.live.add(buffer);
    if (exact) this.exact.add(buffer);
    s.liveBuffers++;
    s.liveBytes += size;
    s.peakLiveBytes = Math.max(s.peakLiveBytes, s.liveBytes);
    s.largestBufferBytes = Math.max(s.largestBufferBytes, size);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (!this.live.delete(buffer)) throw new Error('BufferPool.release: buffer is not live');
    const size = buffer.size;
    const s = this.stats;
    s.liveBuffers--;
    s.liveBytes -= size;
    if (this.exact.delete(buffer)) {
      s.allocatedBytes -= size;
      buffer.destroy();
      return;
    }
    s.freeBytes += size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
  }

  getStats(): Readonly<PoolStats> {
    return { ...this.stats };
  }

  /** Start a new measurement window for peakLiveBytes and largestBufferBytes. */
  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
    this.stats.largestBufferBytes = 0;
  }

  /** Destroy every free buffer (e.g. after a big job, before the tab idles). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
    this.stats.freeBytes = 0;
  }
}
