/**
 * What every fault case shares: the case type, running the built CLI with a hang limit, and the
 * checks a refusal or a success must pass. Each case throws (an AssertionError saying what went
 * wrong) or returns a short note.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { readEvents } from '../../src/train/tensorboard.js';
import type { Rng } from '../../src/util/rng.js';
import { ilsvrc, type Run } from '../../test/cli/run.js';

/** No run may take longer than this: a hang is a failure, not a stuck suite. */
export const HANG_MS = 120_000;

export interface Context {
  /** A fresh folder for this case. */
  dir: string;
  /** Seeds the random moments (kill -9). */
  rng: Rng;
  /** Fewer repetitions (the test suite's form). */
  quick: boolean;
}

export interface Case {
  name: string;
  /** What it breaks, in a few words (the table's second column). */
  what: string;
  /** Needs root to mount a small tmpfs; skipped elsewhere. */
  needsMount?: boolean;
  run(ctx: Context): Promise<string | void>;
}

export function cli(args: readonly string[]): Promise<Run> {
  return ilsvrc(args, {}, HANG_MS);
}

/** Exit 2 with one line on stderr that matches every pattern; returns the line. */
export function assertRefused(r: Run, ...patterns: RegExp[]): string {
  assert.notEqual(r.code, -1, `the process did not exit within ${HANG_MS / 1000} s`);
  assert.equal(r.code, 2, `exit code 2 expected, got ${r.code}: ${r.stderr.slice(-600)}`);
  const line = r.stderr.trim().split('\n').pop() ?? '';
  assert.match(line, /^ilsvrc: /);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
  for (const p of patterns) assert.match(line, p);
  return line;
}

export function assertOk(r: Run): void {
  assert.notEqual(r.code, -1, `the process did not exit within ${HANG_MS / 1000} s`);
  assert.equal(r.code, 0, r.stderr.slice(-800));
}

export function sameWeights(a: string, b: string): void {
  const x = loadCheckpoint(a).state;
  const y = loadCheckpoint(b).state;
  assert.equal(y.step, x.step, 'step');
  for (const [name, p] of x.params)
    assert.ok(
      Buffer.from(p.buffer, p.byteOffset, p.byteLength).equals(
        Buffer.from(y.params.get(name)!.buffer, y.params.get(name)!.byteOffset, y.params.get(name)!.byteLength),
      ),
      `${name} differs`,
    );
}

/** Every event file's steps of one tag, in order, across files: a repeated step is a failure. */
export function tagSteps(dir: string, tag: string): number[] {
  const steps: number[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.startsWith('events.out.tfevents.'))
    .sort()) {
    for (const e of readEvents(join(dir, f))) if (e.scalars.some((s) => s.tag === tag)) steps.push(e.step);
  }
  return steps;
}
