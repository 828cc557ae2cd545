// The Photo step: the chosen photo, checked before it is shown, and its square crop.
import type { CropRect } from '../../domain/types.ts';
import { NOTICES } from '../copy.ts';
import { clampCrop, defaultCrop } from '../crop.ts';
import { validateUpload, type UploadProblem } from '../upload-validation.ts';
import type { Slice } from './app-state.ts';
import { patcher } from './patch.ts';

export interface PhotoState {
  status: 'empty' | 'checking' | 'ready' | 'rejected';
  fileName: string | null;
  problem: UploadProblem | null;
  /** Oriented size (what the preview shows and the crop is measured in). */
  image: { bytes: Uint8Array; mime: string; width: number; height: number; url: string } | null;
  crop: CropRect | null;
}

export interface PhotoSlice {
  photo: PhotoState;
  choosePhoto(file: File): Promise<void>;
  clearPhoto(): void;
  setCrop(crop: CropRect): void;
}

/** The latest choosePhoto call: an earlier one still checking its file gives way. */
let photoTicket = 0;

export const createPhotoSlice: Slice<PhotoSlice> = (set, get) => {
  const patch = patcher(set);
  return {
    photo: { status: 'empty', fileName: null, problem: null, image: null, crop: null },
    async choosePhoto(file) {
      const ticket = ++photoTicket;
      const before = get().photo;
      get().clearNotices('photo');
      patch('photo', { status: 'checking', problem: null });
      const result = await validateUpload(file, (bytes, mime) =>
        createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime })),
      );
      if (ticket !== photoTicket) {
        if (result.ok) result.upload.bitmap.close();
        return; // another file was chosen meanwhile
      }
      if (!result.ok) {
        // A photo chosen earlier stays; only the message is new.
        patch('photo', { status: before.image ? 'ready' : 'rejected', problem: result.problem });
        get().notify(NOTICES.uploadRefused(result.problem));
        return;
      }
      const { upload } = result;
      const width = upload.bitmap.width;
      const height = upload.bitmap.height;
      upload.bitmap.close();
      if (before.image) URL.revokeObjectURL(before.image.url);
      const url = URL.createObjectURL(
        new Blob([upload.bytes as Uint8Array<ArrayBuffer>], { type: upload.header.mime }),
      );
      patch('photo', {
        status: 'ready',
        fileName: upload.name,
        problem: null,
        image: { bytes: upload.bytes, mime: upload.header.mime, width, height, url },
        crop: defaultCrop(width, height),
      });
    },
    clearPhoto() {
      const old = get().photo.image;
      if (old) URL.revokeObjectURL(old.url);
      patch('photo', { status: 'empty', fileName: null, problem: null, image: null, crop: null });
    },
    setCrop(crop) {
      const img = get().photo.image;
      if (img) patch('photo', { crop: clampCrop(crop, img.width, img.height) });
    },
  };
};
