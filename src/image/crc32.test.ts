import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32.ts';

const chelsea = new Uint8Array(readFileSync(new URL('../../../shared/data/photos/chelsea.png', import.meta.url)));

describe('crc32', () => {
  it('gives the standard check values', () => {
    // The catalogue check value of CRC-32/ISO-HDLC, and the empty input.
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926');
    expect(crc32(new Uint8Array(0))).toBe(0);
    // "IEND" alone: the checksum every PNG ends with.
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
  });

  it('matches node:zlib on real bytes, over a range and chained', () => {
    const bytes = chelsea.subarray(0, 5000);
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    expect(crc32(chelsea, 100, 4100)).toBe(zlibCrc32(chelsea.subarray(100, 4100)));
    // Chaining over two halves equals one pass.
    expect(crc32(bytes, 2000, 5000, crc32(bytes, 0, 2000))).toBe(zlibCrc32(bytes));
  });
});
