/**
 * The run config a checkpoint carries is part of its schema: a checkpoint written before its fields
 * took the options' names ("loaderWorkers", and "worker" for !inProcess) still loads and resumes to
 * the same weights as one written today.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { loadSafetensors, saveSafetensors } from '../../src/runtime/safetensors.js';
import { ilsvrc, TINY } from '../cli/run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-ckpt-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Rewrites a checkpoint's run config under the names it was saved with before. */
function withEarlierNames(path: string): void {
  const f = loadSafetensors(path);
  const meta = JSON.parse(f.metadata['ilsvrc']!) as { run: Record<string, unknown> };
  const { workers, inProcess, ...rest } = meta.run;
  meta.run = { ...rest, loaderWorkers: workers, worker: !inProcess };
  saveSafetensors(path, f.tensors, { ...f.metadata, ilsvrc: JSON.stringify(meta) });
}

test('a checkpoint whose run config has the earlier names (loaderWorkers, worker) resumes to the same weights', async () => {
  const today = join(root, 'today');
  const first = await ilsvrc([...TINY, '--max-steps', '6', '--in-process', '--out', today]);
  assert.equal(first.code, 0, first.stderr);
  const earlier = join(root, 'earlier');
  cpSync(today, earlier, { recursive: true });
  withEarlierNames(join(earlier, 'last.safetensors'));
  const read = loadCheckpoint(join(earlier, 'last.safetensors')).meta.run!;
  assert.equal(read.inProcess, true);
  assert.equal(read.workers, 0);
  assert.ok(!('worker' in read) && !('loaderWorkers' in read), JSON.stringify(read));

  for (const out of [today, earlier]) {
    const r = await ilsvrc(['train', '--resume', out, '--max-steps', '12']);
    assert.equal(r.code, 0, r.stderr);
  }
  const a = loadCheckpoint(join(today, 'last.safetensors'));
  const b = loadCheckpoint(join(earlier, 'last.safetensors'));
  assert.equal(b.state.step, 12);
  assert.deepEqual(b.meta.run, a.meta.run);
  for (const [name, p] of a.state.params) assert.deepEqual(b.state.params.get(name), p, name);
  for (const [name, s] of a.state.states) assert.deepEqual(b.state.states.get(name), s, name);
});

test('a damaged "worker" in a checkpoint\'s run config is refused in one line naming the field', async () => {
  const out = join(root, 'damaged');
  const r0 = await ilsvrc([...TINY, '--max-steps', '3', '--out', out]);
  assert.equal(r0.code, 0, r0.stderr);
  const path = join(out, 'last.safetensors');
  const f = loadSafetensors(path);
  const meta = JSON.parse(f.metadata['ilsvrc']!) as { run: Record<string, unknown> };
  const { inProcess: _i, ...rest } = meta.run;
  meta.run = { ...rest, worker: 'yes' };
  saveSafetensors(path, f.tensors, { ...f.metadata, ilsvrc: JSON.stringify(meta) });
  const r = await ilsvrc(['train', '--resume', out, '--max-steps', '6']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Expected a boolean for run\.worker in the "ilsvrc" metadata of .*last\.safetensors but received/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
