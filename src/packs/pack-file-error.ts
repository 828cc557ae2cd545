// A pack file that loaded and verified (size and sha256 match the manifest) but whose
// contents cannot be used: a damaged tokenizer file, a padToken that is not one token, an
// ONNX graph pointing outside its weights. Names the file, so the pack's author knows which.
import { PackError } from '../domain/errors.ts';

export class PackFileError extends PackError {
  constructor(
    /** The pack-relative path of the file concerned ("manifest.json" for manifest fields). */
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'PackFileError';
  }
}
