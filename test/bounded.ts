// Runs one hostile input through a reader with a time and memory bound asserted, for the
// mutation tests: a regression that makes some input cost seconds or hundreds of MiB (the
// failures these tests guard against cost 5–50 s and 1–3 GiB) fails CI on that input.
//
// Memory is the growth of the process's peak resident set (getrusage maxrss), which sees
// every allocation the input caused, freed or not, including ArrayBuffers outside the heap.
// Vitest runs each test file in its own process (pool 'forks'), so nothing else moves it.
import { expect } from 'vitest';

export interface Bound {
  /** Wall time for this one input (generous: CI machines are shared). */
  ms: number;
  /** Growth of the peak RSS this input may cause. */
  mib: number;
}

export const DEFAULT_BOUND: Bound = { ms: 3000, mib: 200 };

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

const peakMiB = () => process.resourceUsage().maxRSS / 1024;

/** Runs `fn` on one input and asserts the bound; returns what it returned or threw. */
export async function bounded<T>(
  label: string,
  fn: () => T | Promise<T>,
  bound: Bound = DEFAULT_BOUND,
): Promise<Outcome<T>> {
  const peak0 = peakMiB();
  const t0 = performance.now();
  let outcome: Outcome<T>;
  try {
    outcome = { ok: true, value: await fn() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const ms = performance.now() - t0;
  const grew = peakMiB() - peak0;
  expect(ms, `${label}: took ${ms.toFixed(0)} ms`).toBeLessThan(bound.ms);
  expect(grew, `${label}: raised peak memory by ${grew.toFixed(0)} MiB`).toBeLessThan(bound.mib);
  return outcome;
}
