// A request field that is not what the session allows: refused before any work starts. Its
// name carries the wire kind (worker/worker-error.ts maps `WorkerError:<kind>` names), so the
// app shows it as bad input and the CLI prints its message.
export class BadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerError:bad-input';
  }
}
