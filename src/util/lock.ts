/**
 * An exclusive lock on a folder. The owner (pid, host, command, start time and a random token) is
 * written whole to a temp file and linked to the lock's name, which fails when the name exists:
 * a lock file always has its full content, and none is ever removed on a guess. A live owner, an
 * owner on another host and a lock this code cannot read are refused in one line that says what
 * holds it and, where only the user can know the run is gone, which file to remove.
 *
 * A lock whose owner is dead on this host is taken over through a claim: the taker links its own
 * lock as `.ilsvrc.lock.<hash of the stale lock's bytes>.next`, which one taker alone can create,
 * and only that taker renames its claim over the stale lock. Removing the stale lock after
 * re-reading it would not do: between one taker's check and its removal another can replace it
 * with a live lock, which the first would then remove. A claimant that dies before its rename is
 * itself stale and is claimed in turn, so the lock is a chain from `.ilsvrc.lock` through claims;
 * a claim no longer reachable from the lock (its stale lock was replaced meanwhile) is withdrawn.
 * Also clears the temp files that atomic writes of dead processes left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, lstatSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './errors.js';
import { ensureDir, removeFile, writeTemp } from './fsx.js';

export const LOCK_FILE = '.ilsvrc.lock';

interface Owner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface DirLock {
  readonly path: string;
  release(): void;
}

/** True while a process with this pid exists on this machine (EPERM: it exists but is not ours). */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(bytes: Buffer): Owner | undefined {
  try {
    const o = JSON.parse(bytes.toString('utf8')) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.host === 'string'
      ? { pid: o.pid, host: o.host, command: String(o.command ?? '?'), since: String(o.since ?? '?') }
      : undefined;
  } catch {
    return undefined;
  }
}

function readBytes(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The name of the claim that takes over the lock with these bytes (each lock has a token, so its own name). */
function claimPath(dir: string, stale: Buffer): string {
  return join(dir, `${LOCK_FILE}.${createHash('sha256').update(stale).digest('hex').slice(0, 16)}.next`);
}

const CLAIM = /^\.ilsvrc\.lock\.[0-9a-f]{16}\.next$/;

/** What the chain from the lock ends in. */
type Chain =
  | { kind: 'free' }
  | { kind: 'unreadable'; file: string }
  | { kind: 'held'; file: string; owner: Owner; bytes: Buffer; files: string[] }
  | { kind: 'stale'; claim: string };

/** Follows the lock through claims of dead owners to a live owner, a free name or a lock no one can read. */
function follow(dir: string, host: string): Chain {
  const files: string[] = [];
  let file = join(dir, LOCK_FILE);
  for (;;) {
    const bytes = readBytes(file);
    // A claim that is missing is where the chain ends; a missing lock was released or replaced meanwhile.
    if (bytes === undefined) return files.length === 0 ? { kind: 'free' } : { kind: 'stale', claim: file };
    const owner = parseOwner(bytes);
    if (!owner) return { kind: 'unreadable', file };
    files.push(file);
    if (owner.host !== host || processAlive(owner.pid)) return { kind: 'held', file, owner, bytes, files };
    file = claimPath(dir, bytes);
  }
}

function linked(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      const why = `link() failed (${code})`;
      throw new UsageError(`Expected the folder of ${to} on a file system with hard links (the lock is linked into place) but ${why}`);
    }
    throw e;
  }
}

/**
 * Takes `dir`'s lock for this process, creating `dir` if needed. `what` names the folder in the
 * refusal ("--out runs/x"). Throws UsageError when another run holds it or it cannot be read.
 */
export function lockDir(dir: string, what: string, command = process.argv.slice(1).join(' ')): DirLock {
  const path = join(dir, LOCK_FILE);
  if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true) {
    throw new UsageError(`Expected the lock file ${path} for ${what} (or nothing there) but it is a folder; move it away`);
  }
  const host = hostname();
  const token = randomBytes(8).toString('hex');
  const mine = Buffer.from(JSON.stringify({ pid: process.pid, host, command, since: new Date().toISOString(), token }) + '\n');
  let temp: string | undefined;
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      temp ??= ownTemp(dir, what, path, mine);
      let taken: boolean;
      try {
        taken = linked(temp, path) || takeOver(dir, host, temp, path, what, mine);
      } catch (e) {
        // The temp vanished (a cleaner on another host sharing the folder took it for a dead one): write it again.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        rmSync(temp, { force: true });
        temp = undefined;
        continue;
      }
      if (taken) {
        clearStaleTemps(dir);
        clearDeadClaims(dir);
        return held(dir, path, mine);
      }
    }
  } finally {
    if (temp !== undefined) rmSync(temp, { force: true });
  }
  throw new UsageError(`Expected to take the lock ${path} for ${what} but other processes kept taking it`);
}

function ownTemp(dir: string, what: string, path: string, mine: Buffer): string {
  for (let attempt = 0; ; attempt++) {
    ensureDir(dir, what);
    try {
      return writeTemp(path, mine);
    } catch (e) {
      // A release of the lock removes the folder when it is empty; make it again.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 3) throw e;
    }
  }
}

/**
 * After the lock's name was found taken: refuses a live or foreign owner, or claims a stale lock.
 * True when this process now holds the lock; false to try again (it was released meanwhile, or
 * this claim lost its stale lock to another taker's).
 */
function takeOver(dir: string, host: string, temp: string, path: string, what: string, mine: Buffer): boolean {
  const found = follow(dir, host);
  if (found.kind === 'free') return false;
  if (found.kind === 'unreadable') {
    const why = 'it is empty or unreadable (written by an older ilsvrc, or cut short by a crash)';
    const hint = `if no run is using the folder, remove ${found.file}`;
    throw new UsageError(`Expected ${found.file} to name the run holding ${what} but ${why}; ${hint}`);
  }
  if (found.kind === 'held') throw refusal(found.owner, found.file, path, what, host);
  if (!linked(temp, found.claim)) return false; // another taker claimed first: the next look names it
  // The claim counts only if the chain still reaches it: the stale lock may have been replaced since it was read.
  const check = follow(dir, host);
  if (check.kind === 'held' && check.file === found.claim && check.bytes.equals(mine)) {
    // Only the claim at the chain's end may replace the lock: every owner before it is dead.
    renameSync(found.claim, path);
    for (const f of check.files.slice(1, -1)) rmSync(f, { force: true });
    return true;
  }
  if (readBytes(found.claim)?.equals(mine)) rmSync(found.claim, { force: true });
  return false;
}

function refusal(owner: Owner, file: string, path: string, what: string, host: string): UsageError {
  const run = `(${owner.command}, since ${owner.since})`;
  if (owner.host !== host) {
    const hint = `if that run is gone, remove ${file}`;
    return new UsageError(`Expected no other run in ${what} but process ${owner.pid} on ${owner.host} ${run} holds ${file}; ${hint}`);
  }
  if (owner.pid === process.pid) return new UsageError(`Expected ${what} to be free but this process already holds ${path}`);
  const hint = 'wait for it, stop it, or choose another folder';
  return new UsageError(`Expected no other run in ${what} but process ${owner.pid} ${run} holds ${path}; ${hint}`);
}

function held(dir: string, path: string, mine: Buffer): DirLock {
  let holding = true;
  return {
    path,
    release: () => {
      if (!holding) return;
      holding = false;
      // Only a claim on a dead owner replaces a lock, so while this process lives the lock stays ours or gone.
      if (readBytes(path)?.equals(mine)) rmSync(path, { force: true });
      try {
        rmdirSync(dir); // only if the run never wrote anything (a refused start leaves no empty folder)
      } catch {
        // not empty: the run's files stay
      }
    },
  };
}

/** Removes claims whose claimant died: with the lock held by a live process, none is reachable. */
function clearDeadClaims(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!CLAIM.test(name)) continue;
    const bytes = readBytes(join(dir, name));
    const owner = bytes && parseOwner(bytes);
    if (bytes && (!owner || (owner.host === hostname() && !processAlive(owner.pid)))) rmSync(join(dir, name), { force: true });
  }
}

/** Removes `.<name>.<pid>.<rand>.tmp` files (writeTemp's) whose writer process is gone. */
export function clearStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = /^\..+\.(\d+)\.[a-z0-9]+\.tmp$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    if (removeFile(join(dir, name))) removed.push(name);
  }
  return removed;
}
