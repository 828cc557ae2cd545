import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/random.ts';
import { Sha256, sha256Hex } from './sha256.ts';

const nodeHex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function randomBytes(seed: number, n: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.int(0, 255);
  return out;
}

describe('sha256', () => {
  it('matches the FIPS 180-2 examples', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(sha256Hex(enc(''))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(enc('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(enc('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    const h = new Sha256();
    const a = enc('a'.repeat(1000));
    for (let i = 0; i < 1000; i++) h.update(a); // one million 'a'
    expect(h.hex()).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('matches node:crypto for every length around the padding boundaries', () => {
    const data = randomBytes(1, 300);
    for (let n = 0; n <= 300; n++) expect(sha256Hex(data.subarray(0, n)), `n=${n}`).toBe(nodeHex(data.subarray(0, n)));
  });

  it('matches node:crypto on random data of odd lengths, fed in random chunkings', () => {
    const r = rng(7);
    for (const n of [1, 63, 64, 65, 127, 1000, 4097, 65_537, 1_000_003]) {
      const data = randomBytes(n, n);
      const want = nodeHex(data);
      for (let trial = 0; trial < 3; trial++) {
        const h = new Sha256();
        for (let at = 0; at < n;) {
          // Mix of tiny chunks (partial blocks carried over) and big ones.
          const size = r.uniform() < 0.5 ? r.int(0, 70) : r.int(1, 200_000);
          h.update(data.subarray(at, Math.min(n, at + size)));
          at += size;
        }
        expect(h.bytesHashed).toBe(n);
        expect(h.hex(), `n=${n} trial ${trial}`).toBe(want);
      }
    }
  });

  it('hashes a chunk that is a view into a larger buffer at an odd offset', () => {
    const big = randomBytes(3, 10_000);
    const view = big.subarray(333, 9_001);
    expect(sha256Hex(view)).toBe(nodeHex(view));
  });

  it('refuses use after digest', () => {
    const h = new Sha256().update(new Uint8Array(3));
    h.digest();
    expect(() => h.update(new Uint8Array(1))).toThrow(/after digest/);
    expect(() => h.digest()).toThrow(/twice/);
  });

  it('matches node:crypto over 8 MiB fed in 1 MiB chunks (a download-sized stream)', () => {
    const chunk = randomBytes(4, 1 << 20);
    const h = new Sha256();
    const ref = createHash('sha256');
    for (let i = 0; i < 8; i++) {
      chunk[i] ^= 0x5a; // each chunk differs
      h.update(chunk);
      ref.update(chunk);
    }
    expect(h.hex()).toBe(ref.digest('hex'));
  });
});
