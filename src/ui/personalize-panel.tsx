import { formatStart } from './format.ts';
import { LossChart } from './loss-chart.tsx';
import { useAppStore } from './store/index.ts';

const STAGE_TEXT = {
  encoding: 'Reading the photo…',
  nearest: 'Found the nearest words; tuning next…',
  tuning: 'Tuning',
  done: 'Done',
} as const;

export function PersonalizePanel() {
  const p = useAppStore((s) => s.personalize);
  const packReady = useAppStore((s) => s.pack.status === 'done');
  const hasEncoder = useAppStore((s) => s.pack.summary?.hasTuningEncoder ?? true);
  const defaultSteps = useAppStore((s) => s.pack.summary?.tuningSteps ?? null);
  const photo = useAppStore((s) => s.photo.image);
  const set = useAppStore((s) => s.setPersonalize);
  const start = useAppStore((s) => s.startPersonalize);
  const cancel = useAppStore((s) => s.cancelPersonalize);
  const goTo = useAppStore((s) => s.goTo);
  const running = p.status === 'running';
  const needsWord = packReady && !hasEncoder && !p.classWord.trim();
  const blocker = !packReady
    ? 'Load a model first (step 1).'
    : !photo
      ? 'Choose a photo first (step 2).'
      : needsWord
        ? 'Say in one word what the photo shows.'
        : null;

  return (
    <section className="panel" aria-labelledby="personalize-heading" data-testid="screen-personalize">
      <h2 id="personalize-heading">3. Personalize</h2>
      {hasEncoder ? (
        <p className="lede">
          The encoder turns your photo into a new word and small weight changes, then a few tuning steps refine them.
          Use the word in prompts to draw your thing.
        </p>
      ) : (
        <p className="lede">
          This model has no tuning encoder, so the new word starts from an ordinary word for what the photo shows and
          longer tuning ({defaultSteps ?? 'more'} steps by default) teaches it your thing. Use the new word in prompts
          to draw it.
        </p>
      )}
      <form
        className="form-grid"
        onSubmit={(e) => {
          e.preventDefault();
          void start();
        }}
      >
        <div className="field">
          <label htmlFor="placeholder-input">Placeholder word</label>
          <input
            id="placeholder-input"
            value={p.placeholder}
            onChange={(e) => set({ placeholder: e.target.value })}
            disabled={running}
            autoComplete="off"
            spellCheck={false}
            aria-describedby="placeholder-help"
          />
          <small id="placeholder-help" className="muted">
            The word your prompts will use for the thing.
          </small>
        </div>
        <div className="field">
          <label htmlFor="tune-steps-input">Tuning steps</label>
          <input
            id="tune-steps-input"
            type="number"
            min={1}
            max={100}
            value={p.steps}
            onChange={(e) => set({ steps: Number(e.target.value) })}
            disabled={running}
          />
        </div>
        {!hasEncoder && (
          <div className="field">
            <label htmlFor="class-word-input">What is it? (one word)</label>
            <input
              id="class-word-input"
              value={p.classWord}
              placeholder="dog, mug, statue…"
              onChange={(e) => set({ classWord: e.target.value })}
              disabled={running}
              required
              autoComplete="off"
              aria-describedby="class-word-help"
            />
            <small id="class-word-help" className="muted">
              Needed because this model has no encoder: tuning starts from this word’s meaning.
            </small>
          </div>
        )}
        <div className="field">
          <label htmlFor="tune-seed-input">Tuning seed</label>
          <input
            id="tune-seed-input"
            type="number"
            min={0}
            value={p.seed}
            onChange={(e) => set({ seed: Number(e.target.value) })}
            disabled={running}
          />
        </div>
        <div className="actions span-all">
          {running ? (
            <button type="button" onClick={cancel} data-testid="personalize-cancel">
              Cancel
            </button>
          ) : (
            <button type="submit" className="primary" disabled={blocker !== null}>
              Personalize
            </button>
          )}
          {blocker && !running && (
            <span className="muted" data-testid="personalize-blocker">
              {blocker}
            </span>
          )}
        </div>
      </form>

      {(running || p.status === 'done' || p.losses.length > 0) && (
        <div className="personalize-progress" data-testid="personalize-progress">
          <label htmlFor="tune-bar">
            {p.stage ? STAGE_TEXT[p.stage] : ''}
            {p.stage === 'tuning' && ` — step ${p.step} of ${p.totalSteps}`}
          </label>
          <progress id="tune-bar" max={p.totalSteps} value={p.status === 'done' ? p.totalSteps : p.step} />
        </div>
      )}
      {p.start && (
        <p className="muted" data-testid="personalize-start">
          Started from {formatStart(p.start)}.
        </p>
      )}
      {p.nearest.length > 0 && (
        <p className="nearest" data-testid="nearest-words">
          near: {p.nearest.join(', ')}
        </p>
      )}
      {(running || p.losses.length > 0) && <LossChart />}
      {p.status === 'cancelled' && (
        <p role="status" className="muted">
          Cancelled. Nothing was saved.
        </p>
      )}
      {p.savedId && (
        <div className="actions">
          <span role="status">Saved to your library.</span>
          <button type="button" className="primary" onClick={() => goTo('generate')}>
            Next: generate
          </button>
        </div>
      )}
    </section>
  );
}
