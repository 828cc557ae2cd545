// The whole store's type: the slices side by side. Each slice file declares its own part
// (state and actions) and builds it with the same set/get over the whole state, so an
// action may read and patch another slice's state (loading a pack sets the generation
// defaults, a finished personalization selects its concept for generation).
import type { StateCreator } from 'zustand';
import type { GallerySlice } from './gallery-slice.ts';
import type { GenerateSlice } from './generate-slice.ts';
import type { GpuSlice } from './gpu-slice.ts';
import type { LibrarySlice } from './library-slice.ts';
import type { LibraryTransferSlice } from './library-transfer-slice.ts';
import type { NavigationSlice } from './navigation-slice.ts';
import type { NoticesSlice } from './notices-slice.ts';
import type { PackSlice } from './pack-slice.ts';
import type { PersonalizeSlice } from './personalize-slice.ts';
import type { PhotoSlice } from './photo-slice.ts';

export type AppState = NavigationSlice &
  GpuSlice &
  NoticesSlice &
  PackSlice &
  PhotoSlice &
  PersonalizeSlice &
  GenerateSlice &
  GallerySlice &
  LibrarySlice &
  LibraryTransferSlice;

/** One slice's creator: it sees (and may change) the whole state. */
export type Slice<T> = StateCreator<AppState, [], [], T>;

export type SetState = Parameters<Slice<unknown>>[0];
export type GetState = Parameters<Slice<unknown>>[1];

export type JobStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';
