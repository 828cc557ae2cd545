// `window.__likeness`: a small typed handle for browser tests and for poking at the app from
// devtools. Reading is free; changes go through the same store actions the UI uses (there
// is no back door into storage), for what a person cannot do yet without a pipeline — e.g.
// put a concept into the library without personalizing one.
import type { ConceptData, ImageResult } from '../domain/types.ts';
import { useAppStore, type AppState, type GalleryRequest } from './store/index.ts';

export interface LikenessTestApi {
  readonly version: 1;
  /** A snapshot of the whole store (plain data). */
  state(): AppState;
  /** Saves a concept through the store (as a finished personalization does); resolves with its id once stored. */
  saveConcept(concept: ConceptData, options?: { name?: string }): Promise<string>;
  /**
   * Starts the same save but resolves as soon as the write has been issued inside its
   * transaction, before it commits — so a test can close the page mid-write.
   */
  startSaveConcept(concept: ConceptData, options?: { name?: string }): Promise<void>;
  /** Puts finished images into the gallery (as a finished generation does). */
  addGalleryImages(images: ImageResult[], request: GalleryRequest): Promise<void>;
}

declare global {
  interface Window {
    __likeness?: LikenessTestApi;
  }
}

export function installTestApi(): void {
  if (window.__likeness) return;
  window.__likeness = {
    version: 1,
    state: () => useAppStore.getState(),
    saveConcept: (concept, options) => useAppStore.getState().saveConcept(concept, options),
    startSaveConcept: (concept, options) =>
      new Promise<void>((resolve, reject) => {
        useAppStore.getState().saveConcept(concept, options, { onIssued: resolve }).catch(reject);
      }),
    addGalleryImages: (images, request) => useAppStore.getState().addGalleryImages(images, request, null),
  };
}
