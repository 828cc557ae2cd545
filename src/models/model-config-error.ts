// A model config (config.json of a UNet, VAE, CLIP encoder or the tuning encoder) that this
// implementation cannot run, with every problem its check found.
import { PackError } from '../domain/errors.ts';
import type { JsonIssue } from '../domain/json-checker.ts';
import { MAX_LISTED_PROBLEMS } from '../domain/limits.ts';

export class ModelConfigError extends PackError {
  constructor(
    /** Which config: "unet", "vae", "tuning encoder"… */
    readonly config: string,
    readonly issues: readonly JsonIssue[],
  ) {
    const listed = issues.slice(0, MAX_LISTED_PROBLEMS).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    const more = issues.length > MAX_LISTED_PROBLEMS ? `; … and ${issues.length - MAX_LISTED_PROBLEMS} more` : '';
    super(`${config} config: ${listed.join('; ')}${more}`);
    this.name = 'ModelConfigError';
  }
}
