/**
 * Runs racing for one run folder's lock: several `train` on one --out at once (with and without a
 * dead run's lock in it), and processes racing the lock itself for many rounds.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE } from '../../src/util/lock.js';
import { ilsvrc, TINY } from '../../test/cli/run.js';
import { deadLock, overlaps, raceLock, winners } from '../../test/util/lock-race.js';
import { assertRefused, type Case, type Context, HANG_MS } from './harness.js';

/** `procs` trains on one --out at once: one runs to the end, every other is refused naming it. */
async function trainsAtOnce(out: string, procs: number): Promise<void> {
  // Long enough that every other start meets the run, not its finished folder.
  const runs = await Promise.all(Array.from({ length: procs }, () => ilsvrc([...TINY, '--max-steps', '12', '--out', out], {}, HANG_MS)));
  const ok = runs.filter((r) => r.code === 0);
  assert.equal(ok.length, 1, `exactly one run goes ahead; exit codes ${runs.map((r) => r.code).join(' ')}`);
  const holder = new RegExp(`^ilsvrc: Expected no other run in --out .* but process ${ok[0]!.pid} \\(`);
  for (const r of runs.filter((x) => x !== ok[0])) assertRefused(r, holder);
  assert.equal(readdirSync(out).filter((n) => n.startsWith('events.out.tfevents.')).length, 1, 'one event file');
  assert.deepEqual(
    readdirSync(out).filter((n) => n.startsWith(LOCK_FILE)),
    [],
    'no lock, claim or temp left',
  );
}

async function rounds(ctx: Context, name: string, quick: number, full: number, stale: boolean): Promise<string> {
  const n = ctx.quick ? quick : full;
  for (let r = 0; r < n; r++) {
    const out = join(ctx.dir, `${name}-${r}`);
    if (stale) {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, LOCK_FILE), deadLock('then'));
    }
    await trainsAtOnce(out, ctx.quick ? 3 : 5);
  }
  return `${n} round${n > 1 ? 's' : ''} of ${ctx.quick ? 3 : 5} trains: one ran, the others were refused naming it`;
}

export const LOCK: Case[] = [
  {
    name: 'lock-race',
    what: 'several trains started together on one --out',
    run: (ctx) => rounds(ctx, 'shared', 1, 4, false),
  },
  {
    name: 'lock-stale-race',
    what: "several trains taking over a dead run's lock",
    run: (ctx) => rounds(ctx, 'stale', 1, 4, true),
  },
  {
    name: 'lock-race-pure',
    what: "six processes racing one folder's lock, live and stale",
    async run(ctx) {
      const n = ctx.quick ? 10 : 200;
      const live = await raceLock(join(ctx.dir, 'live'), { procs: 6, rounds: n, holdMs: 20, stale: false });
      assert.deepEqual(overlaps(live), []);
      const m = ctx.quick ? 5 : 100;
      const stale = await raceLock(join(ctx.dir, 'stale'), { procs: 6, rounds: m, holdMs: 20, stale: true });
      assert.deepEqual(winners(stale, m), new Array<number>(m).fill(1), 'one taker of each dead lock');
      assert.ok(!existsSync(join(ctx.dir, 'live', 'folder', LOCK_FILE)));
      const holds = live.filter((a) => a.start !== undefined).length;
      return `${holds} holds in ${n} rounds, none overlapping; ${m} dead locks, each taken by one of six`;
    },
  },
];
