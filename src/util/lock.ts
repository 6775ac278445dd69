/**
 * An exclusive lock on a folder: a lock file created with O_EXCL that holds the owner's pid and
 * host. A lock whose process is gone (kill -9, a crashed container) is stale and taken over; a
 * live one is refused in one line naming the process. Also clears the temp files that atomic
 * writes of dead processes left behind.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './errors.js';
import { ensureDir, removeFile } from './fsx.js';

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
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): Owner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host, command: String(o.command ?? '?'), since: String(o.since ?? '?') } : undefined;
  } catch {
    return undefined; // torn or unreadable: written by a process that died while writing it
  }
}

/**
 * Takes `dir`'s lock for this process, creating `dir` if needed. `what` names the folder in the
 * refusal ("--out runs/x"). Throws UsageError when a live process holds it.
 */
export function lockDir(dir: string, what: string, command = process.argv.slice(1).join(' ')): DirLock {
  ensureDir(dir, what);
  const path = join(dir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = readOwner(path);
      if (owner && owner.pid === process.pid && owner.host === me.host) throw new UsageError(`Expected ${what} to be free but this process already holds ${path}`);
      if (owner && (owner.host !== me.host || processAlive(owner.pid))) {
        const where = owner.host === me.host ? `process ${owner.pid}` : `process ${owner.pid} on ${owner.host}`;
        throw new UsageError(`Expected no other run in ${what} but ${where} (${owner.command}, since ${owner.since}) holds ${path}; wait for it, stop it, or choose another folder`);
      }
      // Stale: its owner is gone. Remove and try again; a racing taker loses on 'wx' above.
      if (!removeFile(path)) {
        throw new UsageError(`Expected the lock file ${path} for ${what} (or nothing there) but it is a folder; move it away`);
      }
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(me) + '\n');
    } finally {
      closeSync(fd);
    }
    clearStaleTemps(dir);
    let held = true;
    return {
      path,
      release: () => {
        if (!held) return;
        held = false;
        const owner = readOwner(path);
        if (owner && owner.pid === process.pid) removeFile(path);
        try {
          rmdirSync(dir); // only if the run never wrote anything (a refused start leaves no empty folder)
        } catch {
          // not empty: the run's files stay
        }
      },
    };
  }
  throw new UsageError(`Expected to take the lock ${path} for ${what} but other processes kept taking it`);
}

/** Removes `.<name>.<pid>.<rand>.tmp` files (writeFileAtomic's) whose writer process is gone. */
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
