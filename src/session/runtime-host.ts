// The worker's GPU state: one engine (GPUDevice) and the PackRuntime of the loaded pack on
// it. A lost device is detected (engine.isLost, a DeviceLostError) and both are dropped;
// the next call creates a fresh engine and re-opens the runtime from the pack's cache
// (OPFS), so nothing is downloaded again. The concept library lives in IndexedDB on the
// main thread and is not touched by any of this.
import type { LoadedPack } from '../packs/pack-loader.ts';
import { BadInputError, LikenessError } from '../domain/errors.ts';

export interface HostEngine {
  readonly isLost: boolean;
  destroy(): void;
}

export interface HostRuntime<E extends HostEngine> {
  readonly engine: E;
  dispose(): void;
}

export class NoPackError extends BadInputError {
  constructor() {
    super('No model is loaded. Load a model on the Model step first.');
    this.name = 'NoPackError';
  }
}

export class RuntimeHost<E extends HostEngine, R extends HostRuntime<E>> {
  private enginePromise: Promise<E> | null = null;
  private engineValue: E | null = null;
  private pack: LoadedPack | null = null;
  private runtimePromise: Promise<R> | null = null;
  private runtimeValue: R | null = null;
  /** How many times a lost device was replaced (shown in messages, read by tests). */
  recoveries = 0;

  constructor(
    private readonly createEngine: () => Promise<E>,
    private readonly openRuntime: (engine: E, pack: LoadedPack) => Promise<R>,
  ) {}

  /** The engine, created on first use and re-created after a device loss. */
  engine(): Promise<E> {
    if (this.engineValue?.isLost) {
      this.dropEngine();
      this.recoveries++;
    }
    if (!this.enginePromise) {
      const p = this.createEngine().then(
        (e) => {
          if (this.enginePromise === p) this.engineValue = e;
          return e;
        },
        (err: unknown) => {
          if (this.enginePromise === p) this.enginePromise = null;
          throw err;
        },
      );
      this.enginePromise = p;
    }
    return this.enginePromise;
  }

  get loadedPack(): LoadedPack | null {
    return this.pack;
  }

  /** Makes `pack` current (the previous runtime is freed); its runtime opens on first use. */
  setPack(pack: LoadedPack): void {
    this.disposeRuntime();
    this.pack = pack;
  }

  /** Makes `pack` current with a runtime already opened for it (on the current engine). */
  adopt(pack: LoadedPack, runtime: R): void {
    this.disposeRuntime();
    this.pack = pack;
    this.runtimeValue = runtime;
    this.runtimePromise = Promise.resolve(runtime);
  }

  /** The current pack's runtime on the current engine (opened, or re-opened after a loss). */
  async runtime(): Promise<R> {
    const pack = this.pack;
    if (!pack) throw new NoPackError();
    const engine = await this.engine();
    if (this.runtimeValue && (this.runtimeValue.engine !== engine || engine.isLost)) this.disposeRuntime();
    if (!this.runtimePromise) {
      const p = this.openRuntime(engine, pack).then(
        (rt) => {
          if (this.runtimePromise === p) this.runtimeValue = rt;
          else rt.dispose(); // superseded by another pack meanwhile
          return rt;
        },
        (err: unknown) => {
          if (this.runtimePromise === p) this.runtimePromise = null;
          throw err;
        },
      );
      this.runtimePromise = p;
    }
    const rt = await this.runtimePromise;
    if (this.pack !== pack) return this.runtime();
    return rt;
  }

  /**
   * After a failed call: if the device is gone, drop the engine and the runtime so the next
   * call starts clean. Returns whether that happened.
   */
  recoverFrom(err: unknown): boolean {
    const lost = (this.engineValue?.isLost ?? false) || (err instanceof LikenessError && err.kind === 'device-lost');
    if (lost) {
      this.dropEngine();
      this.recoveries++;
    }
    return lost;
  }

  /** Frees the runtime and the device; the pack stays current and re-opens on the next call. */
  dropEngine(): void {
    this.disposeRuntime();
    const e = this.engineValue;
    this.engineValue = null;
    this.enginePromise = null;
    try {
      e?.destroy();
    } catch {
      // A lost device may refuse to free its buffers; they are gone with it anyway.
    }
  }

  private disposeRuntime(): void {
    const rt = this.runtimeValue;
    this.runtimeValue = null;
    this.runtimePromise = null;
    try {
      rt?.dispose();
    } catch {
      // See dropEngine.
    }
  }
}
