import { formatBytes } from './format.ts';
import { useAppStore } from './store/index.ts';

/** How much this site stores and may store, and whether the browser may evict it. */
export function StorageMeter() {
  const estimate = useAppStore((s) => s.library.estimate);
  const persisted = useAppStore((s) => s.library.persisted);
  if (!estimate) return null;
  const share = estimate.quota ? estimate.usage / estimate.quota : 0;
  return (
    <div className="storage-meter" data-testid="storage-meter">
      <label htmlFor="storage-bar">
        Storage used: {formatBytes(estimate.usage)} of about {formatBytes(estimate.quota)} available to this site
      </label>
      <meter id="storage-bar" min={0} max={1} low={0.7} high={0.9} optimum={0} value={share} />
      <p className="muted small" data-testid="persistence">
        {persisted === true
          ? 'The browser has agreed to keep this library even when space runs low.'
          : persisted === false
            ? 'The browser may clear this library if the device runs out of space — export concepts you care about.'
            : 'Export concepts you care about: browsers can clear site data.'}
      </p>
    </div>
  );
}
