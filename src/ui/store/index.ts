// Application state. Components read it only through this store and change it only through
// its actions; the worker and the library are reached only from here. The state is plain
// data (no tensors on the GPU, no class instances) so it can be inspected and tested.
//
// One zustand store made of slices, one file each: navigation, gpu, notices, pack, photo,
// personalize, generate, gallery, library and library transfer (import/export). The words
// the store shows the person are in ../copy.ts; its defaults come from domain/defaults.ts.
import { create } from 'zustand';
import type { AppState } from './app-state.ts';
import { createGallerySlice } from './gallery-slice.ts';
import { createGenerateSlice } from './generate-slice.ts';
import { createGpuSlice } from './gpu-slice.ts';
import { createLibrarySlice } from './library-slice.ts';
import { createLibraryTransferSlice } from './library-transfer-slice.ts';
import { createNavigationSlice } from './navigation-slice.ts';
import { createNoticesSlice } from './notices-slice.ts';
import { createPackSlice } from './pack-slice.ts';
import { createPersonalizeSlice } from './personalize-slice.ts';
import { createPhotoSlice } from './photo-slice.ts';

export type { AppState, JobStatus } from './app-state.ts';
export type { GalleryItem, GalleryRequest } from './gallery-slice.ts';
export type { GenerateField, GenerateState } from './generate-slice.ts';
export type { LibraryState, OtherToolFormat } from './library-slice.ts';
export { STEPS, type StepId } from './navigation-slice.ts';
export type { PackState, PickedFolder } from './pack-slice.ts';
export type { PersonalizeState } from './personalize-slice.ts';
export type { PhotoState } from './photo-slice.ts';

export const useAppStore = create<AppState>()((...a) => ({
  ...createNavigationSlice(...a),
  ...createGpuSlice(...a),
  ...createNoticesSlice(...a),
  ...createPackSlice(...a),
  ...createPhotoSlice(...a),
  ...createPersonalizeSlice(...a),
  ...createGenerateSlice(...a),
  ...createGallerySlice(...a),
  ...createLibrarySlice(...a),
  ...createLibraryTransferSlice(...a),
}));
