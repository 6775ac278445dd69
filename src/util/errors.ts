/**
 * A mistake in what the user asked for (a flag, a path, a file's contents). The CLI prints its
 * one-line message and exits with status 2, without a stack trace; anything else is a bug.
 */
export class UsageError extends Error {
  override readonly name: string = 'UsageError';
}

/** sharp's error shape: `Expected <what> for <name> but received <value>`. */
export function expected(what: string, name: string, received: unknown): UsageError {
  return new UsageError(`Expected ${what} for ${name} but received ${describe(received)}`);
}

/** A short, unambiguous rendering of a received value: strings quoted, long values cut. */
export function describe(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'function') text = 'a function';
  else if (value === undefined || typeof value === 'number' || typeof value === 'boolean') {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      // Cycles and BigInts inside objects cannot be stringified; the type is still useful.
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
