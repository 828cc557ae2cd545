import { useAppStore } from './store/index.ts';

const AREA_LABEL = {
  gpu: 'GPU',
  pack: 'Model',
  photo: 'Photo',
  personalize: 'Personalize',
  generate: 'Generate',
  library: 'Library',
} as const;

/** Every current error, warning and note, newest last; each says what happened and what to do. */
export function MessageArea() {
  const notices = useAppStore((s) => s.notices);
  const dismiss = useAppStore((s) => s.dismiss);
  return (
    <section className="message-area" aria-label="Messages" aria-live="polite" data-testid="message-area">
      {notices.map((n) => (
        <div
          key={n.id}
          className={`notice notice-${n.tone}`}
          role={n.tone === 'error' ? 'alert' : 'status'}
          data-testid="notice"
          data-kind={n.kind}
          data-area={n.area}
        >
          <div className="notice-body">
            <p className="notice-title">
              <span className="notice-area">{AREA_LABEL[n.area]}:</span> {n.title}
            </p>
            <p className="notice-message" data-testid="notice-message">
              {n.message}
            </p>
            {n.hint && <p className="notice-hint">{n.hint}</p>}
          </div>
          <button
            type="button"
            className="icon-button"
            onClick={() => dismiss(n.id)}
            aria-label={`Dismiss: ${n.title}`}
          >
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
