// The gallery: finished images as PNGs with their settings embedded, newest first.
import { DEFAULTS } from '../../domain/defaults.ts';
import type { GenerateRequest, ImageResult } from '../../domain/types.ts';
import { newJobId } from '../../worker/client.ts';
import { NOTICES } from '../copy.ts';
import { generationTextEntries, imageFileName, type GenerationRecord } from '../../session/generation-metadata.ts';
import { generationRecord } from '../../session/generation-png.ts';
import { encodePng, saveFile } from '../image-encode.ts';
import type { Slice } from './app-state.ts';

export interface GalleryItem {
  id: string;
  /** Object URL of the PNG (settings embedded). */
  url: string;
  png: Blob;
  fileName: string;
  record: GenerationRecord;
}

/** The settings images were generated with, as their PNGs record them (the blend resolved). */
export type GalleryRequest = Omit<GenerateRequest, 'concept' | 'blend'> & { blend: number };

export interface GallerySlice {
  gallery: GalleryItem[];
  addGalleryImages(images: ImageResult[], request: GalleryRequest, concept: GenerationRecord['concept']): Promise<void>;
  downloadImage(id: string): void;
  removeImage(id: string): void;
}

export const createGallerySlice: Slice<GallerySlice> = (set, get) => ({
  gallery: [],
  async addGalleryImages(images, request, concept) {
    const items: GalleryItem[] = [];
    for (const image of images) {
      const record = generationRecord({ ...request, rng: request.rng ?? DEFAULTS.generate.rng }, image, {
        packId: get().pack.summary?.id ?? null,
        concept,
        createdAt: Date.now(),
      });
      try {
        const png = new Blob([(await encodePng(image, generationTextEntries(record))) as Uint8Array<ArrayBuffer>], {
          type: 'image/png',
        });
        items.push({
          id: newJobId('image'),
          url: URL.createObjectURL(png),
          png,
          fileName: imageFileName(record),
          record,
        });
      } catch (err) {
        get().notify(NOTICES.pngFailed(err instanceof Error ? err.message : String(err)));
      }
    }
    set((s) => ({ gallery: [...items, ...s.gallery] }));
  },
  downloadImage(id) {
    const item = get().gallery.find((g) => g.id === id);
    if (item) saveFile(item.png, item.fileName, 'image/png');
  },
  removeImage(id) {
    const item = get().gallery.find((g) => g.id === id);
    if (item) URL.revokeObjectURL(item.url);
    set((s) => ({ gallery: s.gallery.filter((g) => g.id !== id) }));
  },
});
