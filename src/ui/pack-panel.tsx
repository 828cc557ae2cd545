import { DownloadProgressBar } from './download-progress.tsx';
import { formatBytes } from './format.ts';
import { useAppStore } from './store/index.ts';

export function PackPanel() {
  const pack = useAppStore((s) => s.pack);
  const setSource = useAppStore((s) => s.setPackSource);
  const setUrl = useAppStore((s) => s.setPackUrl);
  const setFolder = useAppStore((s) => s.setPackFolder);
  const setCheckpoint = useAppStore((s) => s.setPackCheckpoint);
  const setCheckpointConfig = useAppStore((s) => s.setPackCheckpointConfig);
  const building =
    pack.sourceKind === 'checkpoint' || (pack.sourceKind === 'files' && pack.folder?.kind === 'diffusers');
  const loadPack = useAppStore((s) => s.loadPack);
  const goTo = useAppStore((s) => s.goTo);
  const running = pack.status === 'running';

  return (
    <section className="panel" aria-labelledby="pack-heading" data-testid="screen-pack">
      <h2 id="pack-heading">1. Choose a model</h2>
      <p className="lede">
        A model pack holds the diffusion model and, usually, the encoder that reads your photo. It is downloaded once,
        checked, and kept in this browser for offline use.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void loadPack();
        }}
      >
        <fieldset disabled={running}>
          <legend>Where the pack comes from</legend>
          <div className="choice">
            <input
              type="radio"
              id="pack-bundled"
              name="pack-source"
              checked={pack.sourceKind === 'bundled'}
              onChange={() => setSource('bundled')}
            />
            <label htmlFor="pack-bundled">
              Tiny pack, bundled with the app <span className="muted">(fast, toy quality — for trying things out)</span>
            </label>
          </div>
          <div className="choice">
            <input
              type="radio"
              id="pack-url"
              name="pack-source"
              checked={pack.sourceKind === 'url'}
              onChange={() => setSource('url')}
            />
            <label htmlFor="pack-url">From an address</label>
          </div>
          {pack.sourceKind === 'url' && (
            <div className="field indent">
              <label htmlFor="pack-url-input">Manifest address</label>
              <input
                id="pack-url-input"
                type="url"
                inputMode="url"
                placeholder="https://example.com/packs/sd15/manifest.json"
                value={pack.url}
                onChange={(e) => setUrl(e.target.value)}
              />
            </div>
          )}
          <div className="choice">
            <input
              type="radio"
              id="pack-files"
              name="pack-source"
              checked={pack.sourceKind === 'files'}
              onChange={() => setSource('files')}
            />
            <label htmlFor="pack-files">From a folder on this device</label>
          </div>
          {pack.sourceKind === 'files' && (
            <div className="field indent">
              <label htmlFor="pack-folder-input">
                A pack folder (with manifest.json), or a Stable Diffusion 1.x / 2.x model folder in the diffusers
                layout, which is turned into a pack here
              </label>
              <input
                id="pack-folder-input"
                type="file"
                // React does not know the attribute; the DOM does.
                {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
                multiple
                onChange={(e) => setFolder([...(e.target.files ?? [])])}
              />
              {pack.folder && (
                <p className="muted" data-testid="pack-folder">
                  {pack.folder.name}: {pack.folder.files.length} files, {formatBytes(pack.folder.bytes)}
                  {pack.folder.kind === 'pack'
                    ? ' — a pack'
                    : pack.folder.kind === 'diffusers'
                      ? ' — a diffusers model: it will be built into a pack in this browser'
                      : ' — neither a pack nor a diffusers model'}
                </p>
              )}
              {pack.folder?.kind === 'diffusers' && <ImageEncoderField />}
            </div>
          )}
          <div className="choice">
            <input
              type="radio"
              id="pack-checkpoint"
              name="pack-source"
              checked={pack.sourceKind === 'checkpoint'}
              onChange={() => setSource('checkpoint')}
            />
            <label htmlFor="pack-checkpoint">From a .safetensors checkpoint on this device</label>
          </div>
          {pack.sourceKind === 'checkpoint' && (
            <div className="field indent">
              <label htmlFor="pack-checkpoint-input">
                A Stable Diffusion 1.x or 2.x single-file checkpoint (the A1111 / ComfyUI kind); it is read piece by
                piece and turned into a pack here
              </label>
              <input
                id="pack-checkpoint-input"
                type="file"
                accept=".safetensors"
                onChange={(e) => setCheckpoint(e.target.files?.[0] ?? null)}
              />
              {pack.checkpoint && (
                <p className="muted" data-testid="pack-checkpoint-file">
                  {pack.checkpoint.name}: {formatBytes(pack.checkpoint.size)}
                </p>
              )}
              <label htmlFor="pack-checkpoint-config-input">
                Optional: a diffusers folder for its configs and image encoder (needed for non-standard models)
              </label>
              <input
                id="pack-checkpoint-config-input"
                type="file"
                // React does not know the attribute; the DOM does.
                {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
                multiple
                onChange={(e) => setCheckpointConfig([...(e.target.files ?? [])])}
              />
              {pack.checkpointConfig && (
                <p className="muted" data-testid="pack-checkpoint-config">
                  configs from {pack.checkpointConfig.name}
                </p>
              )}
              <ImageEncoderField />
            </div>
          )}
        </fieldset>
        <div className="actions">
          <button type="submit" className="primary" disabled={running}>
            {building ? 'Build and load' : pack.status === 'done' ? 'Load again' : 'Load model'}
          </button>
        </div>
      </form>
      <DownloadProgressBar />
      {pack.summary && (
        <div className="pack-summary" data-testid="pack-summary">
          <h3>{pack.summary.name}</h3>
          <dl>
            <dt>Size</dt>
            <dd>{formatBytes(pack.summary.totalBytes)}</dd>
            <dt>Image size</dt>
            <dd>
              {pack.summary.imageSize} × {pack.summary.imageSize}
            </dd>
            <dt>Licence</dt>
            <dd>{pack.summary.licence}</dd>
            <dt>Encoder</dt>
            <dd data-testid="pack-encoder">
              {!pack.summary.hasTuningEncoder
                ? 'none — personalizing starts from a word you type for what the photo shows, with longer tuning'
                : pack.summary.tuningEncoderTrained
                  ? 'tuning encoder included'
                  : 'untrained test encoder: shows the pipeline, not personalization quality'}
            </dd>
            {pack.summary.description && (
              <>
                <dt>About</dt>
                <dd data-testid="pack-description">{pack.summary.description}</dd>
              </>
            )}
          </dl>
          <button type="button" onClick={() => goTo('photo')}>
            Next: choose a photo
          </button>
        </div>
      )}
    </section>
  );
}

/** For a model without image_encoder/: the CLIP image encoder a pack needs, from another folder. */
function ImageEncoderField() {
  const imageEncoder = useAppStore((s) => s.pack.imageEncoder);
  const setImageEncoder = useAppStore((s) => s.setPackImageEncoder);
  return (
    <>
      <label htmlFor="pack-image-encoder-input">
        Optional: an image-encoder folder (CLIPVisionModelWithProjection), if the model has no image_encoder/
      </label>
      <input
        id="pack-image-encoder-input"
        type="file"
        // React does not know the attribute; the DOM does.
        {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
        multiple
        onChange={(e) => setImageEncoder([...(e.target.files ?? [])])}
      />
      {imageEncoder && <p className="muted">image encoder from {imageEncoder.name}</p>}
    </>
  );
}
