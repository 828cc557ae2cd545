import type { DownloadProgress } from '../domain/types.ts';
import { formatBytes, formatEta, formatRate } from './format.ts';
import { useAppStore } from './store/index.ts';

function progressLabel(p: DownloadProgress | null): string {
  if (!p || p.phase === 'manifest') return 'Reading the pack manifest…';
  // All bytes are in and verified; the weights are being checked and put on the GPU.
  if (p.phase === 'done') return 'Preparing the model…';
  if (p.phase === 'verify') return `Checking ${p.file}`;
  if (p.phase === 'build') return `Building the pack: ${p.file}`;
  return `Downloading ${p.file}`;
}

/** Bytes, rate and time left of the pack download, with cancel. */
export function DownloadProgressBar() {
  const status = useAppStore((s) => s.pack.status);
  const progress = useAppStore((s) => s.pack.progress);
  const cancel = useAppStore((s) => s.cancelPack);
  const building = useAppStore(
    (s) => s.pack.sourceKind === 'checkpoint' || (s.pack.sourceKind === 'files' && s.pack.folder?.kind === 'diffusers'),
  );
  if (status === 'cancelled' && building) {
    return (
      <p className="muted" role="status" data-testid="download-cancelled">
        Build cancelled. What it had written was removed; building again starts over.
      </p>
    );
  }
  if (status === 'cancelled') {
    return (
      <p className="muted" role="status" data-testid="download-cancelled">
        Download cancelled. Files already verified stay cached; loading again resumes the rest.
      </p>
    );
  }
  if (status !== 'running') return null;
  const total = progress?.totalBytes ?? 0;
  const loaded = progress?.loadedBytes ?? 0;
  return (
    <div className="download" data-testid="download-progress">
      <label htmlFor="download-bar">{progressLabel(progress)}</label>
      <progress id="download-bar" max={total || undefined} value={total ? loaded : undefined} />
      <p className="download-stats" aria-live="polite">
        <span>
          {formatBytes(loaded)} of {total ? formatBytes(total) : '—'}
        </span>
        <span>{formatRate(progress?.bytesPerSecond ?? 0)}</span>
        <span>{progress?.etaSeconds != null ? `${formatEta(progress.etaSeconds)} left` : 'time left: —'}</span>
      </p>
      <button type="button" onClick={cancel}>
        {progress?.phase === 'build' ? 'Cancel build' : 'Cancel download'}
      </button>
    </div>
  );
}
