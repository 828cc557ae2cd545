import { useShallow } from 'zustand/react/shallow';
import { ConceptCard } from './concept-card.tsx';
import { DropZone } from './drop-zone.tsx';
import { StorageMeter } from './storage-meter.tsx';
import { useAppStore } from './store/index.ts';

export function LibraryPanel() {
  const status = useAppStore((s) => s.library.status);
  const busy = useAppStore((s) => s.library.busy);
  const ids = useAppStore(useShallow((s) => s.library.concepts.map((c) => c.id)));
  const importConcepts = useAppStore((s) => s.importConcepts);
  const pack = useAppStore((s) => s.pack.summary);
  const importWord = useAppStore((s) => s.library.importWord);
  const setImportWord = useAppStore((s) => s.setImportWord);
  const importPartial = useAppStore((s) => s.library.importPartial);
  const setImportPartial = useAppStore((s) => s.setImportPartial);

  return (
    <section className="panel" aria-labelledby="library-heading" data-testid="screen-library">
      <h2 id="library-heading">Your concepts</h2>
      <p className="lede">
        Concepts are kept in this browser. Export one to keep a copy or share it; import files exported before.
      </p>
      <StorageMeter />
      <DropZone
        inputId="concept-import-input"
        testId="concept-drop"
        accept=".safetensors"
        multiple
        onFiles={(files) => void importConcepts(files)}
        label={
          <>
            <strong>Import concept files</strong> — choose or drop <code>.safetensors</code> files exported from
            Likeness, or a LoRA and/or a textual-inversion embedding from diffusers, kohya, A1111 or ComfyUI (drop the
            two together to make one concept; it starts at blend 1, the look it has there).
          </>
        }
      />
      <div className="field">
        <label htmlFor="import-word">Word for an imported LoRA or embedding</label>
        <input
          id="import-word"
          value={importWord}
          maxLength={64}
          placeholder="the file's trigger word, else its name"
          onChange={(e) => setImportWord(e.target.value)}
          aria-describedby="import-word-help"
        />
        <small id="import-word-help" className="muted">
          What you will write in prompts for it. Likeness concept files keep their own word.
        </small>
      </div>
      <label>
        <input type="checkbox" checked={importPartial} onChange={(e) => setImportPartial(e.target.checked)} /> Import
        only the parts Likeness can apply (a LoRA&apos;s attention projections, without a text-encoder part): an
        approximation of how other tools use it.
      </label>
      <p className="muted" data-testid="library-import-pack">
        {pack ? (
          <>
            Files are checked against the loaded pack, <strong>{pack.name}</strong>: a concept made with another pack is
            refused.
          </>
        ) : (
          <>Load a model pack first to import: a concept file is checked against the pack it was made for.</>
        )}
      </p>
      {busy && (
        <p role="status" data-testid="library-busy">
          {busy}
        </p>
      )}
      {status === 'loading' && <p role="status">Opening the library…</p>}
      {status === 'unavailable' && (
        <p className="muted" data-testid="library-unavailable">
          The library cannot be used in this browser window (see the message above).
        </p>
      )}
      {status === 'ready' && ids.length === 0 && (
        <p className="muted" data-testid="library-empty">
          No concepts yet. Personalize a photo and it will be saved here.
        </p>
      )}
      <ul className="concept-list" data-testid="concept-list" aria-label="Concepts">
        {ids.map((id) => (
          <ConceptCard key={id} id={id} />
        ))}
      </ul>
    </section>
  );
}
