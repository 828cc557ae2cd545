import { RgbaCanvas } from './rgba-canvas.tsx';
import { useAppStore } from './store/index.ts';

/** The images as they form, step by step, while generation runs. */
export function PreviewStrip() {
  const status = useAppStore((s) => s.generate.status);
  const step = useAppStore((s) => s.generate.step);
  const total = useAppStore((s) => s.generate.totalSteps);
  const previews = useAppStore((s) => s.generate.previews);
  const cancel = useAppStore((s) => s.cancelGenerate);
  if (status !== 'running') return null;
  return (
    <div className="preview-strip" data-testid="generate-progress">
      <label htmlFor="generate-bar">
        Sampling — step {step} of {total}
      </label>
      <progress id="generate-bar" max={total} value={step} />
      <div className="image-grid">
        {previews.map((p, i) => (
          <RgbaCanvas key={i} image={p} label={`Preview ${i + 1} at step ${step}`} />
        ))}
      </div>
      <button type="button" onClick={cancel}>
        Cancel
      </button>
    </div>
  );
}
