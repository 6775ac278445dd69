import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ensureDir, writeFileAtomic } from '../../src/util/fsx.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-fsx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('ensureDir creates nested directories and is idempotent', () => {
  const d = join(dir, 'a', 'b', 'c');
  ensureDir(d);
  ensureDir(d);
  assert.ok(existsSync(d));
});

test('writeFileAtomic writes a single buffer and a sequence of chunks', () => {
  const p = join(dir, 'one.bin');
  writeFileAtomic(p, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
  function* chunks(): Generator<Uint8Array> {
    yield new Uint8Array([4]);
    yield new Uint8Array(0);
    yield new Uint8Array([5, 6]);
  }
  writeFileAtomic(p, chunks());
  assert.deepEqual([...readFileSync(p)], [4, 5, 6]);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('a failure mid-write keeps the previous file and removes the temp file', () => {
  const p = join(dir, 'keep.bin');
  writeFileSync(p, 'previous');
  function* failing(): Generator<Uint8Array> {
    yield new Uint8Array(1 << 16).fill(7);
    throw new Error('disk full');
  }
  assert.throws(() => writeFileAtomic(p, failing()), /disk full/);
  assert.equal(readFileSync(p, 'utf8'), 'previous');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('a missing directory is an error, not a silent no-op', () => {
  assert.throws(() => writeFileAtomic(join(dir, 'nope', 'x.bin'), new Uint8Array(1)), /ENOENT/);
});
