/**
 * Files that a file names (an ONNX model's external data): read only where the user's own file
 * sits. The user named the model, not what it points to, so a location that leaves the model's
 * folder (an absolute path, `..`, a symbolic link out of it), that is not a regular file (a FIFO
 * would block the read forever, a device could be endless) or whose offset and length run past the
 * file is refused in one line naming the model and the location.
 */
import { closeSync, constants, fstatSync, openSync, realpathSync } from 'node:fs';
import { readFully } from './read.js';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { describe, UsageError } from './errors.js';

/** A location as a file records it, before it is trusted: [what is wrong, or undefined]. */
function locationProblem(location: string): string | undefined {
  if (location === '') return 'is empty';
  if (location.includes('\0')) return 'holds a NUL byte';
  if (isAbsolute(location) || /^[\\/]/.test(location) || /^[A-Za-z]:/.test(location)) return 'is absolute';
  if (location.split(/[\\/]/).includes('..')) return 'climbs out with ".."';
  return undefined;
}

/** `realpath`, or undefined when the path does not resolve (missing, a dangling link). */
function realOrNone(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EACCES') return undefined;
    throw e;
  }
}

/**
 * Reads `length` bytes (to the end when undefined) at `offset` of the file `location` names,
 * relative to the folder of `from`. `what` says what the bytes are for ("tensor "fc8.weight"").
 */
export function readContained(from: string, location: string, offset: number, length: number | undefined, what: string): Uint8Array {
  const refuse = (why: string) => new UsageError(`Expected ${what} in a file beside ${from} but its location ${describe(location)} ${why}`);
  const bad = locationProblem(location);
  if (bad) throw refuse(bad);
  if (!Number.isSafeInteger(offset) || offset < 0) throw refuse(`has offset ${offset}, not a byte position`);
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw refuse(`has length ${length}, not a byte count`);
  const folder = realOrNone(dirname(from)) ?? dirname(from);
  const path = join(dirname(from), location);
  const real = realOrNone(path);
  if (real === undefined) throw refuse(`names ${path}, which does not exist`);
  const rel = relative(folder, real); // '' when it is the folder itself: refused below as a directory
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw refuse(`leads to ${real}, outside ${folder}`);
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then says what was opened.
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(`names ${path}, which cannot be read (${code ?? (e as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(`names ${path}, which is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`);
    const end = length === undefined ? st.size : offset + length;
    if (offset > st.size || end > st.size) {
      throw refuse(`asks for bytes ${offset} to ${end} of ${path}, which has ${st.size}`);
    }
    const buf = new Uint8Array(end - offset);
    const got = readFully(fd, buf, offset);
    if (got < buf.byteLength) throw refuse(`asks for bytes ${offset} to ${end} of ${path}, which ended after ${offset + got}`);
    return buf;
  } finally {
    closeSync(fd);
  }
}
