import { useAppStore } from './store/index.ts';

/** Finished images, newest first; each downloads as a PNG that carries its settings. */
export function Gallery() {
  const items = useAppStore((s) => s.gallery);
  const download = useAppStore((s) => s.downloadImage);
  const remove = useAppStore((s) => s.removeImage);
  return (
    <section className="gallery" aria-labelledby="gallery-heading" data-testid="gallery">
      <h3 id="gallery-heading">Gallery</h3>
      {items.length === 0 ? (
        <p className="muted">
          Generated images appear here. They are kept until you close the tab — download the ones you want.
        </p>
      ) : (
        <ul className="image-grid">
          {items.map((item) => (
            <li key={item.id} className="gallery-item" data-testid="gallery-item">
              <img src={item.url} alt={item.record.prompt} width={item.record.width} height={item.record.height} />
              <p className="muted small">
                seed {item.record.seed} · {item.record.sampler} · {item.record.steps} steps
              </p>
              <div className="actions">
                <button
                  type="button"
                  onClick={() => download(item.id)}
                  aria-label={`Download PNG (seed ${item.record.seed})`}
                >
                  Download PNG
                </button>
                <button
                  type="button"
                  onClick={() => remove(item.id)}
                  aria-label={`Remove image (seed ${item.record.seed})`}
                >
                  Remove
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
