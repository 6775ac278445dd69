import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** `mkdir -p`. */
export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

/**
 * Replaces `path` with the given bytes so that a reader (or a crash, or a full disk) sees either
 * the old file or the complete new one, never a torn mix. Chunks are written one by one, so a
 * checkpoint of several GB is never concatenated in memory; an iterator may produce them lazily.
 */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array> | Uint8Array): void {
  const dir = dirname(path);
  // Same directory, so the rename cannot cross file systems; dot-prefixed so globs skip it.
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const fd = openSync(temp, 'wx');
  let closed = false;
  try {
    for (const chunk of chunks instanceof Uint8Array ? [chunks] : chunks) writeAll(fd, chunk);
    fsyncSync(fd);
    closeSync(fd);
    closed = true;
    renameSync(temp, path);
  } catch (err) {
    if (!closed) closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  syncDir(dir);
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
