import { describe, expect, it } from 'vitest';
import { lossChartGeometry } from './loss-chart-geometry.ts';

describe('loss chart geometry', () => {
  it('spans the plot: first step at the left, highest loss at the top, lowest at the bottom', () => {
    const g = lossChartGeometry([0.5, 0.3, 0.4], 3, 320, 140);
    const expected = [
      [40, 10],
      [175, 116],
      [310, 63],
    ];
    g.points.forEach((p, i) => {
      expect(p.x).toBeCloseTo(expected[i][0], 9);
      expect(p.y).toBeCloseTo(expected[i][1], 9);
    });
    expect(g.path).toBe('M40.0,10.0 L175.0,116.0 L310.0,63.0');
    expect([g.yMin, g.yMax]).toEqual([0.3, 0.5]);
  });
  it('leaves room for the steps still to come', () => {
    const g = lossChartGeometry([1, 0.5], 12);
    expect(g.points[1].x).toBeCloseTo(40 + 270 / 11, 6);
  });
  it('draws a flat or single-point curve mid-height and skips non-finite values', () => {
    expect(lossChartGeometry([0.2], 12).points[0].y).toBeCloseTo(63, 6);
    const g = lossChartGeometry([0.2, Number.NaN, 0.1], 3);
    expect(g.points.map((p) => p.step)).toEqual([1, 3]);
    expect(lossChartGeometry([], 12).path).toBe('');
  });
});
