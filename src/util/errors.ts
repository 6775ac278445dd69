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

/** Values as a sentence lists them, each in `quote`: ["a", "b", "c"] → a, b or c. */
export function orList(values: readonly string[], quote = ''): string {
  const q = values.map((v) => `${quote}${v}${quote}`);
  return q.length < 2 ? q.join('') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
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

/**
 * File-system failures that are the user's to fix (their disk, permissions and paths), with what
 * each code means. Anything else from the file system stays a bug.
 */
const USER_ERRNO: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EFBIG: 'file too large',
  EIO: 'input/output error',
};

/** A Node.js file-system error whose cause is on the user's side, as one line naming the file; else undefined. */
export function userFileError(err: unknown): UsageError | undefined {
  if (err instanceof UsageError || !(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException;
  const what = e.code !== undefined ? USER_ERRNO[e.code] : undefined;
  if (what === undefined) return undefined;
  const verb =
    e.syscall === undefined
      ? 'use'
      : /^(open|read|stat|lstat|access|scandir|readdir|readlink|realpath)/.test(e.syscall)
        ? 'read'
        : /^(write|fsync|close|mkdir|rename|unlink|rmdir|copyfile|ftruncate|symlink|link)/.test(e.syscall)
          ? 'write'
          : 'use';
  const target = e.path !== undefined ? ` ${e.path}` : '';
  return new UsageError(`cannot ${verb}${target}: ${what} (${e.code})`);
}
