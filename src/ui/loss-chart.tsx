import { formatLoss } from './format.ts';
import { lossChartGeometry } from './loss-chart-geometry.ts';
import { useAppStore } from './store/index.ts';

/** The diffusion loss per tuning step, growing as steps arrive. */
export function LossChart() {
  const losses = useAppStore((s) => s.personalize.losses);
  const total = useAppStore((s) => s.personalize.totalSteps);
  const g = lossChartGeometry(losses, total);
  const last = losses.at(-1);
  const summary = losses.length
    ? `Loss after step ${losses.length} of ${total}: ${formatLoss(last!)} (first ${formatLoss(losses[0])}).`
    : 'No tuning steps yet.';
  return (
    <figure className="loss-chart" data-testid="loss-chart">
      <svg viewBox={`0 0 ${g.width} ${g.height}`} role="img" aria-label={summary}>
        <line className="axis" x1={g.plot.left} y1={g.plot.bottom} x2={g.plot.right} y2={g.plot.bottom} />
        <line className="axis" x1={g.plot.left} y1={g.plot.top} x2={g.plot.left} y2={g.plot.bottom} />
        {losses.length > 0 && (
          <>
            <text className="tick" x={g.plot.left - 4} y={g.plot.top + 4} textAnchor="end">
              {formatLoss(g.yMax)}
            </text>
            <text className="tick" x={g.plot.left - 4} y={g.plot.bottom} textAnchor="end">
              {formatLoss(g.yMin)}
            </text>
          </>
        )}
        <text className="tick" x={g.plot.left} y={g.height - 6}>
          1
        </text>
        <text className="tick" x={g.plot.right} y={g.height - 6} textAnchor="end">
          step {Math.max(total, losses.length)}
        </text>
        <path className="curve" d={g.path} />
        {g.points.map((p) => (
          <circle key={p.step} className="point" cx={p.x} cy={p.y} r={2.5}>
            <title>
              step {p.step}: {formatLoss(p.loss)}
            </title>
          </circle>
        ))}
      </svg>
      <figcaption className="muted">{summary}</figcaption>
    </figure>
  );
}
