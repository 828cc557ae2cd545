// The one builder refusal the app words differently from the CLI: the CLI's fix is a flag
// (--image-encoder), the app's is a second folder to pick. A class of its own, in a file of
// its own, so the worker can recognise it without importing the builder or reading messages.
import { PackError } from '../domain/errors.ts';

export class MissingImageEncoderError extends PackError {
  constructor() {
    super(
      'pack: a pack needs a CLIP image encoder (CLIPVisionModelWithProjection, e.g. the image_encoder/ of an IP-Adapter or SD-unCLIP repo); pass --image-encoder <folder with config.json and model.safetensors>',
    );
    this.name = 'MissingImageEncoderError';
  }
}
