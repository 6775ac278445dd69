/**
 * Reading a file whole without trusting it: its real size (fstat, not a header's claim) is checked
 * against a limit for what the file is and against the memory budget before a byte is read, and
 * gzip data is inflated with a hard limit on its output, so neither a large file nor a small one
 * that inflates far is held in memory past what was planned.
 */
import { closeSync, constants, createReadStream, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, inflateSync } from 'node:zlib';
import { formatBytes, requireMemory } from './budget.js';
import { UsageError } from './errors.js';

function kind(s: Stats): string {
  if (s.isFIFO()) return 'a pipe';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * A file opened for reading, refused in one line naming `what` and the file when it is not a
 * regular file: a pipe never ends (and opening one waits for a writer, hence O_NONBLOCK), nor does /dev/zero.
 */
export function openRegular(file: string, what: string): { fd: number; size: number } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const s = fstatSync(fd);
    // A folder fails as readFileSync fails on one, so every caller words it as before.
    if (s.isDirectory()) {
      const e = new Error(`EISDIR: illegal operation on a directory, read '${file}'`);
      throw Object.assign(e, { code: 'EISDIR', syscall: 'read', path: file });
    }
    if (!s.isFile()) throw new UsageError(`Expected ${what} at ${file} to be a regular file but it is ${kind(s)}`);
    return { fd, size: s.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** A size refused in one line naming `what` and the file when it is over `limit` or does not fit the memory budget. */
function checkedSize(size: number, file: string, limit: number, what: string): number {
  if (size > limit) {
    throw new UsageError(`Expected ${what} ${file} to be at most ${formatBytes(limit)} but it is ${formatBytes(size)} (${size} bytes)`);
  }
  requireMemory(size, `${what} ${file} (${formatBytes(size)}, read whole)`);
  return size;
}

/** Reads bytes [offset, offset + out.length) of an open file into `out`; the count read (less at the end of the file). */
export function readFully(fd: number, out: Uint8Array, offset: number): number {
  let done = 0;
  while (done < out.length) {
    const n = readSync(fd, out, done, out.length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** A file read whole after checkedSize; a file that grows meanwhile is read up to the size checked. */
export function readBounded(file: string, limit: number, what: string): Buffer {
  const { fd, size } = openRegular(file, what);
  try {
    const buf = Buffer.allocUnsafe(checkedSize(size, file, limit, what));
    return buf.subarray(0, readFully(fd, buf, 0));
  } finally {
    closeSync(fd);
  }
}

/** Text files (lists, ground truth, class names) hold far less than this; anything larger is something else. */
const TEXT_LIMIT = 64 << 20;

/** A UTF-8 text file read whole through readBounded. */
export function readTextBounded(file: string, what: string, limit = TEXT_LIMIT): string {
  return readBounded(file, limit, what).toString('utf8');
}

function inflateError(e: unknown, file: string, limit: number, what: string, format = 'gzip'): UsageError {
  if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooMuch(file, limit, what);
  return new UsageError(`Expected ${format} data in ${file} but it does not inflate: ${(e as Error).message}`);
}

function tooMuch(file: string, limit: number, what: string): UsageError {
  return new UsageError(`Expected ${what} ${file} to inflate to at most ${limit} bytes but it inflates to more; refused`);
}

/** Gzip bytes inflated in memory, refused past `limit` bytes of output (checked against the memory budget first). */
export function gunzipBounded(bytes: Uint8Array, file: string, limit: number, what: string): Buffer {
  return inflatedBounded(gunzipSync, 'gzip', bytes, file, limit, what);
}

/** Zlib bytes (a deflate stream with its 2-byte header, as in MAT-files) inflated as gunzipBounded inflates gzip. */
export function inflateBounded(bytes: Uint8Array, file: string, limit: number, what: string): Buffer {
  return inflatedBounded(inflateSync, 'zlib', bytes, file, limit, what);
}

function inflatedBounded(
  inflate: (b: Uint8Array, o: { maxOutputLength: number }) => Buffer,
  format: string,
  bytes: Uint8Array,
  file: string,
  limit: number,
  what: string,
): Buffer {
  requireMemory(limit, `${what} ${file} (${formatBytes(limit)} inflated)`);
  let out: Buffer;
  try {
    // One byte more than the limit is enough to know the data holds too much.
    out = inflate(bytes, { maxOutputLength: limit + 1 });
  } catch (e) {
    throw inflateError(e, file, limit, what, format);
  }
  if (out.length > limit) throw tooMuch(file, limit, what);
  return out;
}

/**
 * Inflates a gzip file as a stream, handing each chunk of output to `take` with its position, and
 * stops with a UsageError as soon as the output passes `limit` bytes: memory holds one chunk at a
 * time, whatever the file inflates to. Returns the bytes of output.
 */
export async function gunzipFile(file: string, limit: number, what: string, take: (chunk: Buffer, at: number) => void): Promise<number> {
  let at = 0;
  // Kept aside: the pipeline may reject with the abort of the streams it tears down instead.
  let refused: unknown;
  try {
    await pipeline(createReadStream(file), createGunzip(), async (inflated: AsyncIterable<Buffer>) => {
      for await (const chunk of inflated) {
        if (at + chunk.length > limit) throw (refused = tooMuch(file, limit, what));
        try {
          take(chunk, at);
        } catch (e) {
          throw (refused = e);
        }
        at += chunk.length;
      }
    });
  } catch (e) {
    if (refused !== undefined) throw refused;
    if (e instanceof UsageError) throw e;
    if ((e as NodeJS.ErrnoException).syscall !== undefined) throw e; // a file-system error: the CLI words it, naming the file
    throw inflateError(e, file, limit, what);
  }
  return at;
}
