/** StopSignal: a wait cut short by a stop, an iteration that ends within a wait, and NEVER. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NEVER, StopSignal, Stopped } from '../../src/util/stop.js';

const never = new Promise<number>(() => {});
const later = <T>(v: T, ms: number): Promise<T> => new Promise((r) => setTimeout(() => r(v), ms));

test('race: the work when it comes first; Stopped at once when a stop comes first, before or during the wait', async () => {
  const s = new StopSignal();
  assert.equal(await s.race(later(7, 5), 'loading'), 7);
  setTimeout(() => s.request('SIGTERM'), 20);
  const t0 = Date.now();
  await assert.rejects(s.race(never, 'loading'), (e: unknown) => e instanceof Stopped && e.message === 'loading stopped by SIGTERM');
  assert.ok(Date.now() - t0 < 1000);
  await assert.rejects(s.race(later(1, 5), 'loading'), Stopped);
  assert.equal(s.reason, 'SIGTERM');
  s.request('SIGINT');
  assert.equal(s.reason, 'SIGTERM', 'the first reason stays');
});

test('each: the items, and Stopped within a wait for the next one', async () => {
  async function* slow(): AsyncGenerator<number> {
    yield 1;
    yield 2;
    await never;
  }
  const s = new StopSignal();
  const got: number[] = [];
  setTimeout(() => s.request('SIGINT'), 30);
  await assert.rejects(
    (async () => {
      for await (const x of s.each(slow(), 'evaluation')) got.push(x);
    })(),
    /evaluation stopped by SIGINT/,
  );
  assert.deepEqual(got, [1, 2]);
  const all: number[] = [];
  async function* three(): AsyncGenerator<number> {
    yield* [3, 4, 5];
  }
  for await (const x of NEVER.each(three(), 'x')) all.push(x);
  assert.deepEqual(all, [3, 4, 5]);
  assert.equal(NEVER.requested, false);
});
