import { describe, expect, it } from 'vitest';
import { formatBytes, formatEta, formatLoss, formatRate } from './format.ts';

describe('format', () => {
  it('bytes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(250 * 1024 * 1024)).toBe('250 MB');
    expect(formatBytes(3.2 * 1024 ** 3)).toBe('3.2 GB');
    expect(formatBytes(-1)).toBe('—');
  });
  it('rate and ETA', () => {
    expect(formatRate(0)).toBe('—');
    expect(formatRate(2 * 1024 * 1024)).toBe('2.0 MB/s');
    expect(formatEta(null)).toBe('—');
    expect(formatEta(0.2)).toBe('1 s');
    expect(formatEta(42)).toBe('42 s');
    expect(formatEta(190)).toBe('about 3 min');
    expect(formatEta(3 * 3600 + 600)).toBe('about 3 h 10 min');
  });
  it('loss', () => {
    expect(formatLoss(0.123456)).toBe('0.123');
    expect(formatLoss(Number.NaN)).toBe('NaN');
  });
});
