import { ConceptThumbnail } from './concept-thumbnail.tsx';
import { formatBytes, formatDate, formatStart } from './format.ts';
import { RgbaCanvas } from './rgba-canvas.tsx';
import { useAppStore, type OtherToolFormat } from './store/index.ts';

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
  const format = useAppStore((s) => s.library.exportFormat);
  const setFormat = useAppStore((s) => s.setExportFormat);
  const exportOther = useAppStore((s) => s.exportForOtherTools);
  const blendOne = useAppStore((s) => (s.library.blendOne?.id === id ? s.library.blendOne : null));
  const previewBlendOne = useAppStore((s) => s.previewBlendOne);
  const packReady = useAppStore((s) => s.pack.status === 'done' && s.pack.summary?.hash === c?.packHash);
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
        {blendOne?.image && (
          <figure className="blend-one" data-testid="blend-one-preview">
            <RgbaCanvas image={blendOne.image} label={`${c.name} at blend 1, as other tools show it`} />
            <figcaption className="muted small">
              Blend 1: how diffusers, A1111 and ComfyUI apply this concept (“a photo of {c.placeholder}”, seed 0).
            </figcaption>
          </figure>
        )}
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
          <span className="export-other" role="group" aria-label={`Export ${c.name} for other tools`}>
            <select
              aria-label="Format for other tools"
              value={format}
              onChange={(e) => setFormat(e.target.value as OtherToolFormat)}
            >
              <option value="diffusers">diffusers</option>
              <option value="a1111">A1111 / ComfyUI</option>
            </select>
            <button type="button" onClick={() => void exportOther(c.id)} aria-label={`Export ${c.name} for ${format}`}>
              Export for other tools
            </button>
            <button
              type="button"
              disabled={!packReady || blendOne?.status === 'running'}
              onClick={() => void previewBlendOne(c.id)}
              aria-label={`Show how ${c.name} looks in other tools`}
              title="Other tools apply a concept at blend 1; Likeness' default blend is lower."
            >
              {blendOne?.status === 'running' ? 'Generating blend 1…' : 'Blend-1 look'}
            </button>
          </span>
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
