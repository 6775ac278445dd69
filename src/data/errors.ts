/**
 * A problem with the user's data or data options (a missing folder, an empty class, a bad flag
 * value). The CLI prints its message on one line and exits with status 2; no stack trace.
 */
export class DataError extends Error {
  override name = 'DataError';
}

/** "Expected <what> for <name> but received <value>" — the one error shape for option checks. */
export function expected(what: string, name: string, value: unknown): DataError {
  return new DataError(`Expected ${what} for ${name} but received ${JSON.stringify(value)}`);
}
