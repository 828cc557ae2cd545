// Cancellable jobs in the worker. comlink cannot carry an AbortSignal, so each long call
// names a jobId and `cancel(jobId)` aborts that job's AbortController. A cancelled call
// rejects at once (the pipeline stops at its next check, between steps, in the background),
// and work that touches the GPU runs one job at a time: the engine's scopes are a stack, so
// two interleaved async jobs would free each other's tensors.

export class JobRegistry {
  private readonly running = new Map<string, AbortController>();
  /** Ids cancelled before their call arrived (a cancel can overtake nothing in comlink's
   *  ordered channel, but a caller may cancel an id it never started): refused on start. */
  private readonly cancelledEarly = new Set<string>();

  /** Starts job `id`; its signal aborts on cancel(id). */
  start(id: string): AbortSignal {
    if (this.running.has(id)) throw new Error(`job ${id} is already running`);
    const c = new AbortController();
    this.running.set(id, c);
    if (this.cancelledEarly.delete(id)) c.abort(cancelledError());
    return c.signal;
  }

  finish(id: string): void {
    this.running.delete(id);
  }

  cancel(id: string): void {
    const c = this.running.get(id);
    if (c) c.abort(cancelledError());
    else {
      this.cancelledEarly.add(id);
      // Keep the set bounded: ids are unique per call, so old entries are never needed.
      if (this.cancelledEarly.size > 64) this.cancelledEarly.delete(this.cancelledEarly.values().next().value!);
    }
  }

  get size(): number {
    return this.running.size;
  }

  /**
   * Runs `fn(signal)` as job `id`. The returned promise rejects with the abort reason as soon
   * as the job is cancelled, even while `fn` is still finishing its current step.
   */
  async run<T>(id: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = this.start(id);
    const work = (async () => {
      signal.throwIfAborted();
      return fn(signal);
    })();
    try {
      return await Promise.race([work, abortPromise(signal)]);
    } finally {
      this.finish(id);
      // A job abandoned by the race still settles later; its outcome is of no interest.
      work.catch(() => undefined);
    }
  }
}

export function cancelledError(): DOMException {
  return new DOMException('Cancelled.', 'AbortError');
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * One holder at a time, in arrival order. A waiter whose signal aborts leaves the queue
 * without ever running.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = this.tail;
    this.tail = before.then(() => mine);
    try {
      await (signal ? Promise.race([before, abortPromise(signal)]) : before);
      signal?.throwIfAborted();
      return await fn();
    } finally {
      // If we left the queue early, the next waiter still waits for those ahead of us.
      before.then(release, release);
    }
  }
}
