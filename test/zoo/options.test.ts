import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel } from '../../src/zoo/index.js';
import { loadCheckpoint, readModelOptions } from '../../src/train/checkpoint.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';

const SMALL = { classes: 4, inputSize: 96, width: 1 / 16, aux: true } as const;

function dropRates(auxDropout?: number): number[] {
  const m = buildModel('googlenet', { ...SMALL, ...(auxDropout !== undefined ? { auxDropout } : {}) }, { training: true, batch: 2 });
  return [...m.graph.dropoutMasks.values()].sort();
}

test("--aux-dropout: GoogLeNet's auxiliary heads drop at the given rate, its classifier at its own", () => {
  assert.deepEqual(dropRates(), [0.4, 0.7, 0.7]);
  assert.deepEqual(dropRates(0.2), [0.2, 0.2, 0.4]);
});

test('train googlenet --aux --aux-dropout: the checkpoint records the rate; a bad one is one line, from the flag or the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-aux-dropout-'));
  try {
    const args = ['--data', 'synthetic', '--width', '0.0625', '--input-size', '96', '--init', 'kaiming', '--batch-size', '8'];
    args.push('--threads', '1');
    const r = await ilsvrc(['train', 'googlenet', '--aux', '--aux-dropout', '0.2', ...args, '--max-steps', '1', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const meta = loadCheckpoint(join(dir, 'last.safetensors')).meta;
    assert.equal(meta.modelOptions.auxDropout, 0.2);
    assert.equal(meta.run?.modelOptions.auxDropout, 0.2);

    const bad = await ilsvrc(['train', 'googlenet', '--aux', '--aux-dropout', '1', ...args]);
    assertUsageError(bad, 'Expected a rate in [0, 1) for --aux-dropout but received "1"');
    assertUsageError(await ilsvrc(['summary', 'googlenet', '--aux-dropout', 'x']), '--aux-dropout');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const recorded = { classes: 4, inputSize: 96, channels: 3, width: 1 };
  assert.deepEqual(readModelOptions({ ...recorded, auxDropout: 0.2 }, 'in f'), { ...recorded, auxDropout: 0.2 });
  const damaged = { ...recorded, auxDropout: 1.5 };
  const message = /Expected a rate in \[0, 1\) for modelOptions\.auxDropout in f but received 1\.5/;
  assert.throws(() => readModelOptions(damaged, 'in f', 'modelOptions'), message);
});
