/**
 * Processes racing for one folder's lock (src/util/lock.ts). Each child waits for a common start,
 * then in every round tries the lock once at the same instant (the monotonic clock, shared by all
 * processes of a machine); a winner records when it held it. `stale`: every round's folder starts
 * with the lock of a dead process, and a winner keeps its lock until every child is done, so any
 * second winner of that folder, however late, is a double take-over.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE } from '../../src/util/lock.js';

/** Above Linux's largest pid_max (2^22): no such process. */
export const DEAD_PID = 2 ** 22 + 12345;

/** A lock as a process of this host that has since died left it (in the format before tokens). */
export function deadLock(since: string): string {
  return JSON.stringify({ pid: DEAD_PID, host: hostname(), command: 'ilsvrc train', since }) + '\n';
}

/** The claim that takes over the lock with these bytes (the name src/util/lock.ts links a taker's lock to). */
export function claimOf(dir: string, stale: string): string {
  return join(dir, `${LOCK_FILE}.${createHash('sha256').update(stale).digest('hex').slice(0, 16)}.next`);
}

const CHILD = `
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [lockUrl, dir, logs, id, procs, rounds, hold, stale] = process.argv.slice(1);
const { lockDir } = await import(lockUrl);
const nap = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(nap, 0, 0, Math.max(0, ms));
const now = () => process.hrtime.bigint();
const log = (o) => appendFileSync(join(logs, id + '.log'), JSON.stringify({ id: Number(id), pid: process.pid, ...o }) + '\\n');
writeFileSync(join(logs, 'ready-' + id), '');
while (!existsSync(join(logs, 'go'))) sleep(5);
const t0 = BigInt(readFileSync(join(logs, 'go'), 'utf8'));
const period = BigInt(Number(hold) + 30) * 1000000n;
const kept = [];
for (let r = 0; r < Number(rounds); r++) {
  const start = t0 + BigInt(r) * period;
  sleep(Number((start - now()) / 1000000n) - 1);
  while (now() < start);
  try {
    const lock = lockDir(stale === '1' ? join(dir, String(r)) : dir, 'the race folder', 'race ' + id);
    const s = now();
    if (stale === '1') kept.push(lock);
    else sleep(Number(hold));
    const e = now();
    if (stale !== '1') lock.release();
    log({ round: r, start: String(s), end: String(e) });
  } catch (err) {
    if (err.name !== 'UsageError') throw err;
    log({ round: r, refused: err.message });
  }
}
writeFileSync(join(logs, 'done-' + id), '');
while (readdirSync(logs).filter((n) => n.startsWith('done-')).length < Number(procs)) sleep(10);
for (const l of kept) l.release();
`;

export interface Attempt {
  id: number;
  pid: number;
  round: number;
  /** process.hrtime.bigint() when the lock was taken and before it was released; absent when refused. */
  start?: bigint;
  end?: bigint;
  refused?: string;
}

export interface RaceOptions {
  procs: number;
  rounds: number;
  /** How long a winner holds the lock (plain race). */
  holdMs: number;
  stale: boolean;
  /** Beside each dead lock, the claim of a taker that died before finishing its take-over. */
  deadClaim?: boolean;
  /** The lock module the children use (another build's, to compare). */
  lockModule?: string;
}

/** Runs the race in `dir` (a fresh folder) and returns every attempt; throws when a child fails. */
export async function raceLock(dir: string, o: RaceOptions): Promise<Attempt[]> {
  const target = join(dir, 'folder');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  if (o.stale) {
    for (let r = 0; r < o.rounds; r++) {
      mkdirSync(join(target, String(r)), { recursive: true });
      const stale = deadLock(`round ${r}`);
      writeFileSync(join(target, String(r), LOCK_FILE), stale);
      if (o.deadClaim === true) writeFileSync(claimOf(join(target, String(r)), stale), deadLock(`claim ${r}`));
    }
  }
  const lockUrl = o.lockModule ?? new URL('../../src/util/lock.js', import.meta.url).href;
  const limit = 30_000 + o.rounds * (o.holdMs + 30) * 4;
  const exits = Array.from(
    { length: o.procs },
    (_, id) =>
      new Promise<void>((resolve, reject) => {
        const args = [lockUrl, target, logs, String(id), String(o.procs), String(o.rounds), String(o.holdMs), o.stale ? '1' : '0'];
        const child = ['--input-type=module', '-e', CHILD, ...args];
        execFile(process.execPath, child, { timeout: limit, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
          if (err) reject(new Error(`racer ${id} failed: ${stderr.slice(-1500) || err.message}`));
          else resolve();
        });
      }),
  );
  const failed = Promise.all(exits).then(() => undefined);
  const deadline = Date.now() + limit;
  while (readdirSync(logs).filter((n) => n.startsWith('ready-')).length < o.procs) {
    if (Date.now() > deadline) throw new Error('the racers did not start');
    await Promise.race([failed, new Promise((res) => setTimeout(res, 10))]);
  }
  writeFileSync(join(logs, 'go'), String(process.hrtime.bigint() + 50_000_000n));
  await failed;
  const attempts: Attempt[] = [];
  for (let id = 0; id < o.procs; id++) {
    const file = join(logs, `${id}.log`);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const j = JSON.parse(line) as { id: number; pid: number; round: number; start?: string; end?: string; refused?: string };
      const held = j.start !== undefined && j.end !== undefined ? { start: BigInt(j.start), end: BigInt(j.end) } : {};
      attempts.push({ id: j.id, pid: j.pid, round: j.round, ...held, ...(j.refused !== undefined ? { refused: j.refused } : {}) });
    }
  }
  return attempts;
}

/** Pairs of holds that overlap in time, as text (none when the lock is exclusive). */
export function overlaps(attempts: readonly Attempt[]): string[] {
  const holds = attempts.filter((a) => a.start !== undefined).sort((a, b) => (a.start! < b.start! ? -1 : 1));
  const found: string[] = [];
  for (let i = 1; i < holds.length; i++) {
    const [a, b] = [holds[i - 1]!, holds[i]!];
    const ms = Number(a.end! - b.start!) / 1e6;
    if (b.start! <= a.end!) found.push(`round ${a.round} racer ${a.id} and round ${b.round} racer ${b.id} held it together for ${ms} ms`);
  }
  return found;
}

/** Winners per round. */
export function winners(attempts: readonly Attempt[], rounds: number): number[] {
  const n = new Array<number>(rounds).fill(0);
  for (const a of attempts) if (a.start !== undefined) n[a.round]! += 1;
  return n;
}
