import { CropBox } from './crop-box.tsx';
import { DropZone } from './drop-zone.tsx';
import { MAX_MEGAPIXELS } from './upload-validation.ts';
import { useAppStore } from './store/index.ts';

export function PhotoPanel() {
  const photo = useAppStore((s) => s.photo);
  const choosePhoto = useAppStore((s) => s.choosePhoto);
  const clearPhoto = useAppStore((s) => s.clearPhoto);
  const goTo = useAppStore((s) => s.goTo);
  const { image, crop } = photo;

  return (
    <section className="panel" aria-labelledby="photo-heading" data-testid="screen-photo">
      <h2 id="photo-heading">2. Your photo</h2>
      <p className="lede">
        One clear photo of the thing — a pet, a mug, a sculpture. Then frame it with the square: what is inside is what
        Likeness learns.
      </p>
      <DropZone
        inputId="photo-input"
        testId="photo-drop"
        accept="image/png,image/jpeg,image/webp"
        onFiles={(files) => void choosePhoto(files[0])}
        label={
          <>
            <strong>Choose a photo</strong>, drop it here, or paste it (Ctrl/⌘+V).
            <span className="muted"> PNG, JPEG or WebP, up to {MAX_MEGAPIXELS} megapixels.</span>
          </>
        }
      />
      {photo.status === 'checking' && (
        <p role="status" data-testid="photo-checking">
          Checking the file…
        </p>
      )}
      {image && crop && (
        <div className="photo-preview">
          <div className="crop-frame" data-testid="crop-frame">
            <img src={image.url} alt={`The chosen photo, ${photo.fileName ?? ''}`} draggable={false} />
            <CropBox />
          </div>
          <p id="crop-help" className="muted">
            Drag the square to move it and its corner to resize it. With the keyboard: focus the square, then arrow keys
            move it (Shift for bigger steps) and + / − resize it.
          </p>
          <p data-testid="photo-info">
            <strong>{photo.fileName}</strong> · {image.width} × {image.height} · crop {crop.size} × {crop.size} at (
            {crop.x}, {crop.y})
          </p>
          <div className="actions">
            <button type="button" className="primary" onClick={() => goTo('personalize')}>
              Next: personalize
            </button>
            <button type="button" onClick={clearPhoto}>
              Remove photo
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
