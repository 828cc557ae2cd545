import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../packs/sha256.ts';
import { cephesLog, cephesSinCos, fma32, Mt19937, TorchGenerator, torchRandn } from './torch-random.ts';

// What torch 2.13 itself produced (see shared/data/reference/README.md, torch-randn.json).
interface Case {
  seed: number;
  shape: number[];
  first: number[];
  last: number[];
  sum: number;
  sha256: string;
}
interface Reference {
  cases: Case[];
  sequence: { seed: number; calls: { shape: number[]; first: number[]; sha256: string }[] };
}
const ref = JSON.parse(
  readFileSync(new URL('../../../shared/data/reference/torch-randn.json', import.meta.url), 'utf8'),
) as Reference;

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('torch.randn on a CPU generator', () => {
  it.each(ref.cases.map((c) => [c.seed, c.shape.join('×'), c] as const))(
    'seed %s, shape %s: every value equal to torch (sha256 of the bytes)',
    (_seed, _shape, c) => {
      const got = torchRandn(c.seed, numel(c.shape));
      expect(Array.from(got.subarray(0, c.first.length))).toEqual(c.first);
      expect(Array.from(got.subarray(got.length - c.last.length))).toEqual(c.last);
      let sum = 0;
      for (const v of got) sum += v;
      expect(sum).toBeCloseTo(c.sum, 6);
      expect(sha256Hex(bytesOf(got))).toBe(c.sha256);
    },
  );

  it('continues one stream across calls, including the scalar path’s cached value', () => {
    const g = new TorchGenerator(ref.sequence.seed);
    for (const call of ref.sequence.calls) {
      const got = g.randn(numel(call.shape));
      expect(Array.from(got.subarray(0, call.first.length))).toEqual(call.first);
      expect(sha256Hex(bytesOf(got))).toBe(call.sha256);
    }
  });

  it('the Mersenne Twister gives the reference 10000th output for seed 5489', () => {
    // The C++ standard fixes this value for std::mt19937 default-seeded (5489): 4123659995.
    const mt = new Mt19937(5489);
    let v = 0;
    for (let i = 0; i < 10000; i++) v = mt.next();
    expect(v).toBe(4123659995);
  });

  it('keeps only the low 32 bits of the seed, as torch.manual_seed does', () => {
    expect(Array.from(torchRandn(2 ** 32 + 5, 20))).toEqual(Array.from(torchRandn(5, 20)));
    expect(() => torchRandn(-1, 4)).toThrow(/seed/);
  });
});

describe('float32 helpers', () => {
  // Exact a·b + c as a BigInt rational (scaled by 2^300), rounded to float32 by trying the
  // neighbours of the double result: an independent reference for fma32.
  const SCALE = 300n;
  const exact = (x: number): bigint => {
    // x is a float32: x·2^150 is an integer.
    return BigInt(x * 2 ** 150) << (SCALE - 150n);
  };
  const refFma = (a: number, b: number, c: number): number => {
    const target = ((exact(a) * exact(b)) >> SCALE) + exact(c); // a·b·2^300 exact since both have ≤ 150 fraction bits
    const cand = Math.fround(a * b + c);
    const buf = new Float32Array(1);
    const bits = new Int32Array(buf.buffer);
    let best = cand;
    let bestErr = -1n;
    for (const d of [-1, 0, 1]) {
      buf[0] = cand;
      bits[0] += d;
      const v = buf[0];
      let err = exact(v) - target;
      if (err < 0n) err = -err;
      const even = (bits[0] & 1) === 0;
      if (bestErr < 0n || err < bestErr || (err === bestErr && even)) {
        best = v;
        bestErr = err;
      }
    }
    return best;
  };

  it('fma32 rounds a·b + c once, including at float32 midpoints', () => {
    let s = 99;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
    for (let i = 0; i < 3000; i++) {
      const a = Math.fround((rnd() - 0.5) * 4);
      const b = Math.fround((rnd() - 0.5) * 4);
      const c = Math.fround(-a * b * (1 + (rnd() - 0.5) * 1e-6));
      expect(fma32(a, b, c)).toBe(refFma(a, b, c));
    }
    // A case where rounding twice (to double, then to float32) is wrong: 1 + 2^-24 + 2^-60.
    const a = Math.fround(1 + 2 ** -23);
    const b = Math.fround(1 + 2 ** -23);
    expect(fma32(a, b, Math.fround(-(2 ** -22)))).toBe(refFma(a, b, Math.fround(-(2 ** -22))));
  });

  it('the Cephes log, sin and cos are within 2 float32 ulps of the true values', () => {
    for (let k = 1; k <= 1000; k++) {
      const u = Math.fround(k / 1000);
      expect(Math.abs(cephesLog(u) - Math.log(u))).toBeLessThanOrEqual(
        2 * 2 ** -24 * Math.max(1, Math.abs(Math.log(u))),
      );
      const t = Math.fround((2 * Math.PI * k) / 1000);
      const [sn, cs] = cephesSinCos(t);
      expect(Math.abs(sn - Math.sin(t))).toBeLessThan(3e-7);
      expect(Math.abs(cs - Math.cos(t))).toBeLessThan(3e-7);
    }
  });
});
