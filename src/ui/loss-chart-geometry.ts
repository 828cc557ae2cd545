// Where the loss curve's points go in the chart's SVG coordinates.

export interface ChartGeometry {
  width: number;
  height: number;
  /** SVG path through the points ("" with no points). */
  path: string;
  points: { x: number; y: number; step: number; loss: number }[];
  yMin: number;
  yMax: number;
  /** Plot area inside the padding. */
  plot: { left: number; top: number; right: number; bottom: number };
}

/**
 * `losses[i]` is the loss after step i+1; the x axis spans `totalSteps` so the curve grows
 * left to right as steps arrive. The y axis fits the finite values (a flat curve gets a
 * small band so it is drawn mid-height).
 */
export function lossChartGeometry(
  losses: readonly number[],
  totalSteps: number,
  width = 320,
  height = 140,
): ChartGeometry {
  const plot = { left: 40, top: 10, right: width - 10, bottom: height - 24 };
  const finite = losses.filter(Number.isFinite);
  let yMin = finite.length ? Math.min(...finite) : 0;
  let yMax = finite.length ? Math.max(...finite) : 1;
  if (yMax - yMin < 1e-12) {
    const pad = Math.abs(yMax) * 0.1 || 0.5;
    yMin -= pad;
    yMax += pad;
  }
  const n = Math.max(totalSteps, losses.length, 1);
  const x = (i: number) => plot.left + (n === 1 ? 0 : ((plot.right - plot.left) * i) / (n - 1));
  const y = (v: number) => plot.bottom - ((plot.bottom - plot.top) * (v - yMin)) / (yMax - yMin);
  const points = losses
    .map((loss, i) => ({ x: x(i), y: y(loss), step: i + 1, loss }))
    .filter((p) => Number.isFinite(p.loss));
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  return { width, height, path, points, yMin, yMax, plot };
}
