import { describe, expect, it } from 'vitest';
import { JobRegistry, Mutex } from './jobs.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('JobRegistry', () => {
  it('rejects a cancelled job at once, while its work finishes in the background', async () => {
    const jobs = new JobRegistry();
    let finished = false;
    let seenAbort = false;
    const run = jobs.run('a', async (signal) => {
      await tick(50); // a step that cannot be interrupted
      seenAbort = signal.aborted;
      finished = true;
      return 1;
    });
    await tick(5);
    jobs.cancel('a');
    // "At once": the rejection comes before the uninterruptible step ends (no wall-clock bound,
    // which a loaded machine breaks).
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(finished).toBe(false);
    expect(jobs.size).toBe(0);
    await tick(80);
    expect([finished, seenAbort]).toEqual([true, true]);
  });

  it('passes results and errors through, and refuses a job id cancelled before it started', async () => {
    const jobs = new JobRegistry();
    await expect(jobs.run('ok', async () => 42)).resolves.toBe(42);
    await expect(jobs.run('bad', async () => Promise.reject(new RangeError('no')))).rejects.toThrow(RangeError);
    jobs.cancel('early');
    let ran = false;
    await expect(
      jobs.run('early', async () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(ran).toBe(false);
    // Only once: the same id may be used again later.
    await expect(jobs.run('early', async () => 'again')).resolves.toBe('again');
  });

  it('refuses two running jobs with one id', async () => {
    const jobs = new JobRegistry();
    const a = jobs.run('x', () => tick(20));
    await expect(jobs.run('x', async () => 1)).rejects.toThrow(/already running/);
    await a;
  });
});

describe('Mutex', () => {
  it('runs holders one at a time in arrival order', async () => {
    const m = new Mutex();
    const log: string[] = [];
    const job = (name: string, ms: number) =>
      m.run(undefined, async () => {
        log.push(`${name}+`);
        await tick(ms);
        log.push(`${name}-`);
        return name;
      });
    const results = await Promise.all([job('a', 20), job('b', 5), job('c', 1)]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });

  it('lets a waiter whose signal aborts leave the queue without running, keeping the order of the rest', async () => {
    const m = new Mutex();
    const log: string[] = [];
    const ac = new AbortController();
    const a = m.run(undefined, async () => {
      await tick(30);
      log.push('a');
    });
    const b = m.run(ac.signal, async () => {
      log.push('b');
    });
    const c = m.run(undefined, async () => {
      log.push('c');
    });
    await tick(5);
    ac.abort(new DOMException('Cancelled.', 'AbortError'));
    await expect(b).rejects.toMatchObject({ name: 'AbortError' });
    expect(log).toEqual([]); // c still waits for a
    await Promise.all([a, c]);
    expect(log).toEqual(['a', 'c']);
  });
});
