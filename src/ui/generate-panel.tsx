import { Gallery } from './gallery.tsx';
import { SAMPLER_LABELS, SAMPLERS } from '../domain/samplers.ts';
import { PreviewStrip } from './preview-strip.tsx';
import { useAppStore } from './store/index.ts';

export function GeneratePanel() {
  const g = useAppStore((s) => s.generate);
  const concepts = useAppStore((s) => s.library.concepts);
  const packReady = useAppStore((s) => s.pack.status === 'done');
  const webgpu = useAppStore((s) => s.gpu.status === 'done' && s.gpu.report.ok);
  const set = useAppStore((s) => s.setGenerate);
  const rollSeed = useAppStore((s) => s.rollSeed);
  const start = useAppStore((s) => s.startGenerate);
  const running = g.status === 'running';
  const concept = concepts.find((c) => c.id === g.conceptId) ?? null;
  const num = (v: string) => (v === '' ? 0 : Number(v));

  return (
    <section className="panel" aria-labelledby="generate-heading" data-testid="screen-generate">
      <h2 id="generate-heading">4. Generate</h2>
      <form
        className="form-grid"
        onSubmit={(e) => {
          e.preventDefault();
          void start();
        }}
      >
        <fieldset className="span-all plain" disabled={running}>
          <div className="field">
            <label htmlFor="concept-select">Concept</label>
            <select
              id="concept-select"
              value={g.conceptId ?? ''}
              onChange={(e) => set('conceptId', e.target.value || null)}
            >
              <option value="">None — the plain model</option>
              {concepts.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name.includes(c.placeholder) ? c.name : `${c.name} (${c.placeholder})`}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="prompt-input">Prompt</label>
            <textarea
              id="prompt-input"
              rows={2}
              value={g.prompt}
              onChange={(e) => set('prompt', e.target.value)}
              aria-describedby="prompt-help"
            />
            <small id="prompt-help" className="muted">
              {concept ? `Write ${concept.placeholder} where your thing should appear.` : 'Describe the picture.'}
            </small>
          </div>
          <div className="field">
            <label htmlFor="negative-input">Negative prompt</label>
            <input
              id="negative-input"
              value={g.negativePrompt}
              onChange={(e) => set('negativePrompt', e.target.value)}
              placeholder="blurry, low quality"
            />
          </div>
        </fieldset>
        <fieldset className="span-all plain settings-grid" disabled={running}>
          <div className="field">
            <label htmlFor="gen-steps-input">Steps</label>
            <input
              id="gen-steps-input"
              type="number"
              min={1}
              max={150}
              value={g.steps}
              onChange={(e) => set('steps', num(e.target.value))}
            />
          </div>
          <div className="field">
            <label htmlFor="guidance-input">Guidance</label>
            <input
              id="guidance-input"
              type="number"
              min={0}
              max={30}
              step={0.5}
              value={g.guidance}
              onChange={(e) => set('guidance', num(e.target.value))}
            />
          </div>
          <div className="field">
            <label htmlFor="seed-input">Seed</label>
            <div className="input-row">
              <input
                id="seed-input"
                type="number"
                min={0}
                max={4294967295}
                value={g.seed}
                onChange={(e) => set('seed', num(e.target.value))}
              />
              <button
                type="button"
                className="icon-button"
                onClick={rollSeed}
                aria-label="Random seed"
                title="Random seed"
              >
                <svg className="dice" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                  <rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" strokeWidth="2" />
                  <circle cx="8.5" cy="8.5" r="1.6" fill="currentColor" />
                  <circle cx="15.5" cy="15.5" r="1.6" fill="currentColor" />
                  <circle cx="12" cy="12" r="1.6" fill="currentColor" />
                </svg>
              </button>
            </div>
          </div>
          <div className="field">
            <label htmlFor="sampler-select">Sampler</label>
            <select
              id="sampler-select"
              value={g.sampler}
              onChange={(e) => set('sampler', e.target.value as typeof g.sampler)}
            >
              {SAMPLERS.map((name) => (
                <option key={name} value={name}>
                  {SAMPLER_LABELS[name]}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="blend-input">
              Blend α <output htmlFor="blend-input">{g.blend.toFixed(2)}</output>
            </label>
            <input
              id="blend-input"
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={g.blend}
              onChange={(e) => set('blend', Number(e.target.value))}
              aria-describedby="blend-help"
            />
            <small id="blend-help" className="muted">
              Higher: more like your photo. Lower: follows the prompt more.
            </small>
          </div>
          <div className="field">
            <label htmlFor="batch-input">Batch</label>
            <input
              id="batch-input"
              type="number"
              min={1}
              max={8}
              value={g.batch}
              onChange={(e) => set('batch', Math.max(1, num(e.target.value)))}
            />
          </div>
          <div className="field">
            <label htmlFor="runtime-select">Runtime</label>
            <select
              id="runtime-select"
              value={g.runtime}
              onChange={(e) => set('runtime', e.target.value as typeof g.runtime)}
              aria-describedby="runtime-help"
            >
              <option value="onnx">ONNX Runtime</option>
              <option value="engine" disabled={!webgpu}>
                Likeness engine
              </option>
            </select>
            <small id="runtime-help" className="muted">
              {webgpu ? 'Both run on WebGPU.' : 'Generating needs WebGPU.'}
            </small>
          </div>
          <div className="field">
            <label htmlFor="rng-select">Random numbers</label>
            <select
              id="rng-select"
              value={g.rng}
              onChange={(e) => set('rng', e.target.value as typeof g.rng)}
              aria-describedby="rng-help"
            >
              <option value="philox">Likeness (Philox)</option>
              <option value="torch">PyTorch CPU generator</option>
            </select>
            <small id="rng-help" className="muted">
              {g.rng === 'torch'
                ? 'The same seed starts from the same noise as diffusers with torch.Generator("cpu").manual_seed(seed).'
                : 'The same seed gives the same image in every browser.'}
            </small>
          </div>
        </fieldset>
        <div className="actions span-all">
          <button type="submit" className="primary" disabled={running || !packReady}>
            Generate
          </button>
          {!packReady && <span className="muted">Load a model first (step 1).</span>}
        </div>
      </form>
      <PreviewStrip />
      <Gallery />
    </section>
  );
}
