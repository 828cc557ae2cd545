import { useRef, type PointerEvent as ReactPointerEvent } from 'react';
import type { CropRect } from '../domain/types.ts';
import { clampCrop, cropForKey } from './crop.ts';
import { useAppStore } from './store/index.ts';

type Drag = { mode: 'move' | 'resize'; startX: number; startY: number; start: CropRect; scale: number };

/**
 * The square crop over the photo preview. Drag it to move, drag its corner to resize; with
 * the keyboard, arrows move it (Shift: faster) and + / − resize it.
 */
export function CropBox() {
  const image = useAppStore((s) => s.photo.image);
  const crop = useAppStore((s) => s.photo.crop);
  const setCrop = useAppStore((s) => s.setCrop);
  // The gesture in progress is pointer bookkeeping, not application state.
  const drag = useRef<Drag | null>(null);
  if (!image || !crop) return null;
  const { width, height } = image;

  const begin = (mode: Drag['mode']) => (e: ReactPointerEvent<HTMLElement>) => {
    const frame = (e.currentTarget.closest('.crop-frame') as HTMLElement).getBoundingClientRect();
    e.stopPropagation();
    e.preventDefault();
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { mode, startX: e.clientX, startY: e.clientY, start: crop, scale: width / frame.width };
  };
  const move = (e: ReactPointerEvent<HTMLElement>) => {
    const d = drag.current;
    if (!d) return;
    const dx = (e.clientX - d.startX) * d.scale;
    const dy = (e.clientY - d.startY) * d.scale;
    if (d.mode === 'move') setCrop({ ...d.start, x: d.start.x + dx, y: d.start.y + dy });
    else {
      // The top-left corner stays; the square follows the larger of the two movements.
      const grow = Math.abs(dx) > Math.abs(dy) ? dx : dy;
      const size = Math.min(d.start.size + grow, width - d.start.x, height - d.start.y);
      setCrop(clampCrop({ ...d.start, size }, width, height));
    }
  };
  const end = () => {
    drag.current = null;
  };

  const pct = (v: number, of: number) => `${(100 * v) / of}%`;
  return (
    <div
      className="crop-box"
      role="group"
      aria-roledescription="crop square"
      aria-label={`Crop: ${crop.size} × ${crop.size} pixels at ${crop.x}, ${crop.y}`}
      aria-describedby="crop-help"
      tabIndex={0}
      data-testid="crop-box"
      style={{
        left: pct(crop.x, width),
        top: pct(crop.y, height),
        width: pct(crop.size, width),
        height: pct(crop.size, height),
      }}
      onPointerDown={begin('move')}
      onPointerMove={move}
      onPointerUp={end}
      onPointerCancel={end}
      onKeyDown={(e) => {
        const next = cropForKey(e.key, e.shiftKey, crop, width, height);
        if (next) {
          e.preventDefault();
          setCrop(next);
        }
      }}
    >
      <span
        className="crop-handle"
        aria-hidden="true"
        data-testid="crop-handle"
        onPointerDown={begin('resize')}
        onPointerMove={move}
        onPointerUp={end}
        onPointerCancel={end}
      />
    </div>
  );
}
