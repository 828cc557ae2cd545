import { STEPS, useAppStore, type StepId } from './store/index.ts';

/** Which steps are complete, for the check marks. */
function useDone(): Record<StepId, boolean> {
  const pack = useAppStore((s) => s.pack.status === 'done');
  const photo = useAppStore((s) => s.photo.status === 'ready');
  const personalized = useAppStore((s) => s.personalize.status === 'done');
  const generated = useAppStore((s) => s.gallery.length > 0);
  const library = useAppStore((s) => s.library.concepts.length > 0);
  return { pack, photo, personalize: personalized, generate: generated, library };
}

export function StepNav() {
  const step = useAppStore((s) => s.step);
  const goTo = useAppStore((s) => s.goTo);
  const done = useDone();
  return (
    <nav className="step-nav" aria-label="Steps">
      <ol>
        {STEPS.map((s, i) => (
          <li key={s.id}>
            <button
              type="button"
              data-testid={`step-${s.id}`}
              aria-current={step === s.id ? 'step' : undefined}
              onClick={() => {
                goTo(s.id);
                // Move focus to the new screen so keyboard and screen-reader users land in it.
                requestAnimationFrame(() => document.getElementById('main')?.focus());
              }}
            >
              <span className="step-number" aria-hidden="true">
                {done[s.id] ? '✓' : i + 1}
              </span>
              {s.label}
              {done[s.id] && <span className="visually-hidden"> (done)</span>}
            </button>
          </li>
        ))}
      </ol>
    </nav>
  );
}
