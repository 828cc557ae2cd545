import { ConceptThumbnail } from './concept-thumbnail.tsx';
import { formatBytes, formatDate, formatStart } from './format.ts';
import { useAppStore } from './store.ts';

export function ConceptCard({ id }: { id: string }) {
  const c = useAppStore((s) => s.library.concepts.find((x) => x.id === id));
  const renaming = useAppStore((s) => (s.library.renaming?.id === id ? s.library.renaming : null));
  const confirming = useAppStore((s) => s.library.confirmingDelete === id);
  const startRename = useAppStore((s) => s.startRename);
  const setDraft = useAppStore((s) => s.setRenameDraft);
  const commitRename = useAppStore((s) => s.commitRename);
  const cancelRename = useAppStore((s) => s.cancelRename);
  const askDelete = useAppStore((s) => s.askDelete);
  const del = useAppStore((s) => s.deleteConcept);
  const exportConcept = useAppStore((s) => s.exportConcept);
  const use = useAppStore((s) => s.useConcept);
  if (!c) return null;
  const nameId = `concept-name-${c.id}`;

  return (
    <li className="concept-card" data-testid="concept-card" data-concept-id={c.id} aria-labelledby={nameId}>
      <ConceptThumbnail png={c.thumbnail} placeholder={c.placeholder} />
      <div className="concept-body">
        {renaming ? (
          <form
            className="rename-form"
            onSubmit={(e) => {
              e.preventDefault();
              void commitRename();
            }}
          >
            <label htmlFor={`rename-${c.id}`}>New name</label>
            <input
              id={`rename-${c.id}`}
              value={renaming.draft}
              autoFocus
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') cancelRename();
              }}
            />
            <button type="submit" className="primary">
              Save name
            </button>
            <button type="button" onClick={cancelRename}>
              Cancel
            </button>
          </form>
        ) : (
          <h3 id={nameId} className="concept-name" data-testid="concept-name">
            {c.name}
          </h3>
        )}
        <dl className="concept-facts">
          <dt>Word</dt>
          <dd>
            <code>{c.placeholder}</code>
            {c.nearestWords.length > 0 && (
              <span className="muted"> · near: {c.nearestWords.slice(0, 3).join(', ')}</span>
            )}
          </dd>
          <dt>Model</dt>
          <dd>
            {c.packId} <span className="muted small">({c.packHash.slice(0, 8)})</span>
          </dd>
          {c.start && (
            <>
              <dt>Started from</dt>
              <dd data-testid="concept-start">{formatStart(c.start)}</dd>
            </>
          )}
          <dt>Made</dt>
          <dd>{formatDate(c.createdAt)}</dd>
          <dt>Size</dt>
          <dd>{formatBytes(c.tensorBytes)}</dd>
        </dl>
        <div className="actions">
          <button type="button" className="primary" onClick={() => use(c.id)} aria-label={`Use ${c.name}`}>
            Use
          </button>
          <button type="button" onClick={() => startRename(c.id)} aria-label={`Rename ${c.name}`}>
            Rename
          </button>
          <button type="button" onClick={() => void exportConcept(c.id, 'peft')} aria-label={`Export ${c.name}`}>
            Export
          </button>
          <button
            type="button"
            onClick={() => void exportConcept(c.id, 'kohya')}
            aria-label={`Export ${c.name} for A1111 / kohya`}
          >
            Export (kohya)
          </button>
          {confirming ? (
            <span className="confirm" role="group" aria-label={`Delete ${c.name}?`}>
              <button type="button" className="danger" onClick={() => void del(c.id)} autoFocus>
                Delete for good
              </button>
              <button type="button" onClick={() => askDelete(null)}>
                Keep
              </button>
            </span>
          ) : (
            <button type="button" onClick={() => askDelete(c.id)} aria-label={`Delete ${c.name}`}>
              Delete
            </button>
          )}
        </div>
      </div>
    </li>
  );
}
