import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { writeTemp } from '../../src/util/fsx.js';
import { clearStaleTemps, LOCK_FILE, lockDir } from '../../src/util/lock.js';
import { assertUsageError, ilsvrc, TINY } from '../cli/run.js';
import { claimOf, DEAD_PID, deadLock, overlaps, raceLock, winners } from './lock-race.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));

const REFUSED = /^Expected no other run in the race folder but process \d+ \(race \d+, since \S+\) holds \S+; wait for it/;

test('six processes racing 50 rounds for one folder never hold its lock at the same time', async () => {
  const attempts = await raceLock(join(root, 'race'), { procs: 6, rounds: 50, holdMs: 20, stale: false });
  assert.deepEqual(overlaps(attempts), []);
  const held = attempts.filter((a) => a.start !== undefined).length;
  assert.ok(held >= 25, `the lock was taken in ${held} of 300 attempts`);
  for (const a of attempts) if (a.refused !== undefined) assert.match(a.refused, REFUSED);
});

test('a dead process lock raced by six processes is taken over by exactly one of them', async () => {
  for (const deadClaim of [false, true]) {
    const rounds = deadClaim ? 8 : 16;
    const dir = join(root, `stale-race-${deadClaim}`);
    const attempts = await raceLock(dir, { procs: 6, rounds, holdMs: 20, stale: true, deadClaim });
    const what = `winners per round${deadClaim ? ', a dead claim beside the lock' : ''}`;
    assert.deepEqual(winners(attempts, rounds), new Array<number>(rounds).fill(1), what);
    for (const a of attempts) if (a.refused !== undefined) assert.match(a.refused, REFUSED);
    assert.deepEqual(readdirSync(join(dir, 'folder')), [], 'every folder emptied and removed with its lock');
  }
});

test('a taker that died during its take-over is taken over in turn, and its claim removed', () => {
  const dir = join(root, 'chain');
  mkdirSync(dir);
  const stale = deadLock('then');
  writeFileSync(join(dir, LOCK_FILE), stale);
  writeFileSync(claimOf(dir, stale), deadLock('later'));
  const lock = lockDir(dir, 'the folder', 'test');
  assert.equal((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
  assert.deepEqual(readdirSync(dir), [LOCK_FILE]);
  lock.release();
  assert.ok(!existsSync(dir), 'an empty folder is removed with its lock');
});

test('the same process taking a folder twice is refused', () => {
  const dir = join(root, 'twice');
  const lock = lockDir(dir, 'the folder', 'test');
  try {
    assert.throws(() => lockDir(dir, 'the folder', 'test'), /Expected the folder to be free but this process already holds/);
  } finally {
    lock.release();
  }
});

test('release leaves a lock that is no longer this process one', () => {
  const dir = join(root, 'replaced');
  const lock = lockDir(dir, 'the folder', 'test');
  const other = JSON.stringify({ pid: process.pid, host: hostname(), command: 'test', since: 'now', token: 'another' });
  writeFileSync(join(dir, LOCK_FILE), other);
  lock.release();
  assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), other);
});

test('clearStaleTemps keeps a live taker temp file and removes a dead one', () => {
  const dir = join(root, 'temps');
  mkdirSync(dir);
  const live = writeTemp(join(dir, LOCK_FILE), Buffer.from('{}'));
  const dead = join(dir, `${LOCK_FILE}.${DEAD_PID}.abc123.tmp`);
  writeFileSync(dead, '{}');
  assert.deepEqual(clearStaleTemps(dir), [basename(dead)]);
  assert.ok(existsSync(live));
});

/** A run folder whose lock holds `text`; train must refuse it, keep the lock and write nothing. */
async function refusedWith(name: string, text: string, args: (out: string) => string[], ...parts: string[]): Promise<void> {
  const out = join(root, name);
  mkdirSync(out, { recursive: true });
  const before = readdirSync(out).sort();
  writeFileSync(join(out, LOCK_FILE), text);
  const r = await ilsvrc(args(out), {}, 120_000);
  assertUsageError(r, ...parts.map((p) => p.replaceAll('<lock>', join(out, LOCK_FILE))));
  assert.equal(readFileSync(join(out, LOCK_FILE), 'utf8'), text, 'the lock is left as it was');
  assert.deepEqual(
    readdirSync(out)
      .filter((n) => n !== LOCK_FILE)
      .sort(),
    before,
    'nothing written beside it',
  );
}

test('train refuses an empty or torn lock, naming the file to remove', async () => {
  const fresh = (out: string): string[] => [...TINY, '--max-steps', '3', '--out', out];
  // An empty lock is what a live taker of an older version shows between creating the file and writing it.
  await refusedWith('torn-empty', '', fresh, 'is empty or unreadable', 'if no run is using the folder, remove <lock>');
  await refusedWith('torn-half', '{"pid": 12', fresh, 'is empty or unreadable', 'remove <lock>');
});

test('train --resume refuses a torn lock too', async () => {
  const resume = (out: string): string[] => ['train', '--resume', '--out', out, '--max-steps', '3'];
  await refusedWith('torn-resume', '', resume, 'is empty or unreadable', 'remove <lock>');
});

test('train refuses a lock held on another host, naming the host, the pid and the file to remove', async () => {
  const owner = JSON.stringify({ pid: 4242, host: 'gpu-box-7', command: 'ilsvrc train vgg-a', since: '2026-01-01T00:00:00.000Z' });
  const fresh = (out: string): string[] => [...TINY, '--max-steps', '3', '--out', out];
  await refusedWith('other-host', owner, fresh, 'process 4242 on gpu-box-7 (ilsvrc train vgg-a', 'if that run is gone, remove <lock>');
});
