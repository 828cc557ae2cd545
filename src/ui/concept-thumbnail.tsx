import { useMemo } from 'react';

function dataUrl(png: Uint8Array): string {
  let s = '';
  for (let i = 0; i < png.length; i += 0x8000) s += String.fromCharCode(...png.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(s)}`;
}

/**
 * A stored PNG thumbnail, or the placeholder's first letter when there is none. A data: URL
 * (thumbnails are a few KB) needs no revoking, so it survives re-renders and remounts.
 */
export function ConceptThumbnail({ png, placeholder }: { png: Uint8Array; placeholder: string }) {
  const url = useMemo(() => (png.length ? dataUrl(png) : null), [png]);
  if (!url) {
    return (
      <div className="thumb thumb-empty" aria-hidden="true">
        {placeholder.replace(/[^\p{L}\p{N}]/gu, '').slice(0, 1) || '?'}
      </div>
    );
  }
  return <img className="thumb" src={url} alt="" width={96} height={96} />;
}
