import { useEffect, useRef } from 'react';
import type { ImageResult } from '../domain/types.ts';

/** Draws RGBA pixels (a progressive preview) into a canvas that scales with its box. */
export function RgbaCanvas({ image, label }: { image: ImageResult; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    c.width = image.width;
    c.height = image.height;
    ctx.putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
  }, [image]);
  return <canvas ref={ref} className="preview-canvas" role="img" aria-label={label} />;
}
