/**
 * Reading tar archives in place: an index of member name → (offset, size) from the 512-byte
 * headers alone (ustar, GNU long names 'L', POSIX pax 'x' paths), and a member's bytes by offset.
 * ILSVRC-2012's training set ships as one such archive per synset; indexing one reads a header per
 * image, never the images.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../util/errors.js';

export interface TarEntry {
  /** The member's path inside the archive. */
  name: string;
  /** Where its bytes start in the archive file. */
  offset: number;
  size: number;
}

const BLOCK = 512;

/**
 * The regular files of a tar archive, in archive order (directories, links and devices are left
 * out). With `within`, the archive is the byte range [offset, offset + size) of `file` (a tar
 * inside a tar, read in place); the offsets returned are always positions in `file`.
 */
export function indexTar(file: string, within?: { offset: number; size: number }): TarEntry[] {
  const fd = openSync(file, 'r');
  try {
    const start = within?.offset ?? 0;
    const read: Read = (buf, n, at) => readSync(fd, buf, 0, n, at);
    return indexFd(read, within ? `${file} (member at byte ${start})` : file, start, start + (within?.size ?? fstatSync(fd).size));
  } finally {
    closeSync(fd);
  }
}

/** The regular files of a tar archive held in memory (an inflated .tar.gz); offsets are positions in `bytes`. */
export function indexTarBytes(bytes: Uint8Array, file: string): TarEntry[] {
  const read: Read = (buf, n, at) => {
    const part = bytes.subarray(at, at + n);
    buf.set(part);
    return part.length;
  };
  return indexFd(read, file, 0, bytes.length);
}

type Read = (buf: Buffer, n: number, at: number) => number;

function indexFd(readAt: Read, file: string, start: number, end: number): TarEntry[] {
  const out: TarEntry[] = [];
  const head = Buffer.alloc(BLOCK);
  let pos = start;
  let longName: string | null = null;
  let paxPath: string | null = null;
  // A missing end-of-archive marker is common (some writers stop after the last member).
  while (pos < end) {
    const got = readAt(head, Math.min(BLOCK, end - pos), pos);
    if (got < BLOCK) throw bad(file, pos - start, 'a 512-byte tar header', `the end of the archive after ${got} bytes`);
    const sum = octal(head, 148, 8);
    if (sum === null && head.every((b) => b === 0)) break; // the end-of-archive marker
    if (sum === null || sum !== checksum(head)) {
      throw bad(
        file,
        pos - start,
        'a tar header (ustar, GNU or pax)',
        'bytes whose checksum does not match (not a tar archive, or a damaged one)',
      );
    }
    const size = headerSize(head);
    if (size === null) throw bad(file, pos - start, 'a tar header with a member size', 'an unreadable size field');
    const type = String.fromCharCode(head[156] ?? 0);
    const data = pos + BLOCK;
    if (data + size > end)
      throw bad(file, data - start, `${size} bytes of ${paxPath ?? longName ?? ustarName(head)}`, 'the end of the archive (truncated?)');
    if (type === 'L' || type === 'x') {
      // A name or pax record larger than this is no name: a damaged or hostile archive.
      if (size > 1 << 20)
        throw bad(file, pos - start, `a ${type === 'L' ? 'GNU long name' : 'pax header'} of at most 1 MiB`, `${size} bytes`);
      const body = Buffer.alloc(size);
      readAt(body, size, data);
      if (type === 'L') longName = cString(body, 0, size);
      else paxPath = paxRecord(body, 'path') ?? paxPath;
    } else {
      if (type === '0' || type === '\0' || type === '7') out.push({ name: paxPath ?? longName ?? ustarName(head), offset: data, size });
      // Every other type ('g' global pax, '5' directory, links, devices) has no file of its own.
      longName = null;
      paxPath = null;
    }
    pos = data + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}

/** Bytes [offset, offset + size) of an archive (a member found by indexTar). */
export function readMember(file: string, offset: number, size: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

function bad(file: string, pos: number, what: string, found: string): UsageError {
  return new UsageError(`Expected ${what} at byte ${pos} of ${file} but found ${found}`);
}

function checksum(h: Buffer): number {
  let s = 0;
  for (let i = 0; i < BLOCK; i++) s += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
  return s;
}

/** An octal field (digits, then NUL/space; leading spaces allowed), or null when it holds no digits. */
function octal(h: Buffer, at: number, len: number): number | null {
  let i = at;
  const end = at + len;
  while (i < end && h[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = h[i] ?? 0;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) if (h[i] !== 0 && h[i] !== 0x20) return null;
  return digits > 0 ? v : null;
}

/** The size field: octal, or GNU's base-256 (high bit set) for members of 8 GiB and more. */
function headerSize(h: Buffer): number | null {
  if (((h[124] ?? 0) & 0x80) !== 0) {
    let v = (h[124] ?? 0) & 0x7f;
    for (let i = 125; i < 136; i++) v = v * 256 + (h[i] ?? 0);
    return Number.isSafeInteger(v) ? v : null;
  }
  return octal(h, 124, 12);
}

function cString(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end >= 0 && end < at + len ? end : at + len);
}

/** ustar keeps long paths as prefix/name; GNU's header uses the prefix area for other fields. */
function ustarName(h: Buffer): string {
  const name = cString(h, 0, 100);
  const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = ustar ? cString(h, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** A value of a pax extended header ("<len> <key>=<value>\n" records). */
function paxRecord(body: Buffer, key: string): string | null {
  let p = 0;
  let found: string | null = null;
  while (p < body.length) {
    const sp = body.indexOf(0x20, p);
    if (sp < 0) break;
    const len = parseInt(body.toString('latin1', p, sp), 10);
    if (!(len > 0)) break;
    const rec = body.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (eq >= 0 && rec.slice(0, eq) === key) found = rec.slice(eq + 1);
    p += len;
  }
  return found;
}
