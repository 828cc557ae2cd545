// Every error the project throws on purpose carries its kind: what went wrong, in the few
// categories the app reacts to differently (retry, fix the input, pick another pack, reload
// the GPU…). The worker boundary reads `kind` and nothing else — never the class name or the
// message — so a new error class is classified by where it sits in this hierarchy, and a
// class that forgets to pick a kind does not compile.
//
// Cancellation has no class here: an aborted AbortSignal rejects with the platform's
// AbortError DOMException, which the worker boundary reads as 'cancelled'.
//
// This is the bottom layer: the engine, image, packs, storage and everything above import it.

/** The kinds, in the order the UI lists them. */
export const ERROR_KINDS = [
  'cancelled',
  'bad-input',
  'pack',
  'device-lost',
  'out-of-memory',
  'numerical',
  'internal',
] as const;

/** Errors crossing the worker boundary keep a machine-readable kind. */
export type ErrorKind = (typeof ERROR_KINDS)[number];

export const isErrorKind = (k: unknown): k is ErrorKind =>
  typeof k === 'string' && (ERROR_KINDS as readonly string[]).includes(k);

/** The base of every project error: a message for people, a kind for code, an optional cause. */
export abstract class LikenessError extends Error {
  abstract readonly kind: ErrorKind;

  constructor(message?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The request or the file given is not acceptable; the user can fix it. */
export class BadInputError extends LikenessError {
  readonly kind = 'bad-input';
}

/** A model pack (manifest, weights, tokenizer, graphs) cannot be used as it is. */
export class PackError extends LikenessError {
  readonly kind = 'pack';
}

/** Not enough memory (GPU or system) for the work asked. */
export class OutOfMemoryError extends LikenessError {
  readonly kind = 'out-of-memory';
}

/** A fault of this program or of the platform the user cannot act on (a bug, no WebGPU…). */
export class InternalError extends LikenessError {
  readonly kind = 'internal';
}
