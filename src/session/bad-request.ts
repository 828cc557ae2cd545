// A request field that is not what the session allows: refused before any work starts. Its
// kind is bad input, so the app shows it as such and the CLI prints its message.
import { BadInputError } from '../domain/errors.ts';

export class BadRequest extends BadInputError {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}
