import {
  appendFileSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { UsageError } from './errors.js';
import { basename, dirname, join } from 'node:path';

/**
 * Runs `fn`, naming `path` in a file-system error that does not name its file (a write through a
 * descriptor, a temp file standing in for it), so the message tells the user which file failed.
 */
export function withPath<T>(path: string, fn: () => T, standIn?: string): T {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // A stand-in that is itself a folder is what is in the way: it keeps its own name.
    if (err instanceof Error && typeof e.code === 'string' && (e.path === undefined || (e.path === standIn && e.code !== 'EISDIR')))
      e.path = path;
    throw err;
  }
}

/**
 * The file a path names: the path itself, or the file `name` inside it when it is a folder (an
 * existing one, or a path ending in a separator), as `cp` does. Serves output flags (`-o`) and
 * flags that read a run's file from its folder (`--resume`).
 */
export function fileInFolder(path: string, name: string): string {
  let folder: boolean;
  try {
    folder = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
    folder = false; // a file where a folder of the path should be: ensureDir names it
  }
  return /[\\/]$/.test(path) || folder ? join(path, name) : path;
}

/** Appends text to a file, naming the file in any error. */
export function appendText(path: string, text: string): void {
  withPath(path, () => appendFileSync(path, text));
}

/**
 * `mkdir -p`. A file where a folder of the path should be is the user's: one line naming that
 * file and `what` asked for the folder (a flag such as "--out").
 */
export function ensureDir(dir: string, what = dir): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    let blocking = dir; // the nearest ancestor (or the folder itself) that exists and is not a folder
    for (let d = dir; ; d = dirname(d)) {
      if (statSync(d, { throwIfNoEntry: false })?.isFile() === true) blocking = d;
      if (d === dirname(d)) break;
    }
    throw new UsageError(`Expected a folder (or a path where one can be made) for ${what} but ${blocking} is a file`);
  }
}

/**
 * Replaces `path` with the given bytes so that a reader (or a crash, or a full disk) sees either
 * the old file or the complete new one, never a torn mix. Chunks are written one by one, so a
 * checkpoint of several GB is never concatenated in memory; an iterator may produce them lazily.
 */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array> | Uint8Array): void {
  refuseFolder(path); // before the bytes are written, not at the rename after them
  const temp = writeTemp(path, chunks);
  withPath(
    path,
    () => {
      try {
        renameFile(temp, path);
      } catch (err) {
        rmSync(temp, { force: true });
        throw err;
      }
    },
    temp,
  );
  syncDir(dirname(path));
}

/**
 * Writes the bytes, synced, to a new temp file beside `path` and returns its name, for a rename or
 * link into place. The name, `.<name>.<pid>.<rand>.tmp`, lets clearStaleTemps (util/lock.ts) remove
 * it once its writer is gone; a failure removes it and names `path`.
 */
export function writeTemp(path: string, chunks: Iterable<Uint8Array> | Uint8Array): string {
  // Same directory, so the rename cannot cross file systems; dot-prefixed so globs skip it.
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  withPath(
    path,
    () => {
      const fd = openSync(temp, 'wx');
      let closed = false;
      try {
        for (const chunk of chunks instanceof Uint8Array ? [chunks] : chunks) writeAll(fd, chunk);
        fsyncSync(fd);
        closeSync(fd);
        closed = true;
      } catch (err) {
        if (!closed) closeSync(fd);
        rmSync(temp, { force: true });
        throw err;
      }
    },
    temp,
  );
  return temp;
}

/**
 * A folder where a file is to be written is the user's: the error a rename onto it gives (EISDIR,
 * which `userFileError` words as one line naming the folder), raised before any byte is written.
 */
function refuseFolder(path: string): void {
  if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true) {
    const e = new Error(`EISDIR: illegal operation on a directory, rename onto '${path}'`);
    throw Object.assign(e, { code: 'EISDIR', syscall: 'rename', path });
  }
}

/**
 * Renames a file onto `to`, replacing a file there. A folder at `to` (EISDIR, or ENOTEMPTY and
 * EEXIST where the platform says so) is one line naming it; other errors name `to`.
 */
export function renameFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') refuseFolder(to);
    if (e instanceof Error && typeof code === 'string') (e as NodeJS.ErrnoException).path = to;
    throw e;
  }
}

/**
 * Removes the file at `path` if there is one. A folder there is left alone and the answer is false:
 * a folder is the user's, never a file of ours to clear.
 */
export function removeFile(path: string): boolean {
  try {
    unlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if ((code === 'EISDIR' || code === 'EPERM') && lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true) return false;
    throw e;
  }
  return true;
}

function writeAll(fd: number, chunk: Uint8Array): void {
  // writeSync may write less than asked (Linux caps one call at ~2 GiB).
  let off = 0;
  while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
}

/** Makes the rename itself durable. Some platforms (Windows) cannot open a directory; skip there. */
function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // EINVAL/EISDIR on file systems without directory fsync: the data itself is already synced.
  } finally {
    closeSync(fd);
  }
}
