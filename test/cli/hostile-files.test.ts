/**
 * Model files hostile in what they hold (test/cli/hostile-files.ts): a NaN or infinite weight is
 * never written into a checkpoint; ONNX external data is read only from a regular file inside the
 * model's folder; a file that defines one name twice, or a graph that feeds itself, is refused
 * naming both definitions; a folder where a run writes a file is one line naming it. Each is one
 * line on stderr, exit 2, and the valid files of the same kinds still import.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LOCK_FILE } from '../../src/util/lock.js';
import { importArgs, writeHostileFiles, type HostileFiles } from './hostile-files.js';
import { assertUsageError, ilsvrc, TINY, type Run } from './run.js';

let f: HostileFiles;
before(() => {
  f = writeHostileFiles();
});
after(() => rmSync(f.dir, { recursive: true, force: true }));

/** A hang (a FIFO read) fails the test rather than the suite. */
const HANG_MS = 60_000;
const out = (name: string) => join(f.dir, 'out', `${name}.safetensors`);

describe('import: hostile model files', () => {
  test('valid ONNX (inline and external data), Caffe and state-dict files import', async () => {
    mkdirSync(join(f.dir, 'out'), { recursive: true });
    for (const [kind, file] of Object.entries(f.valid)) {
      const r = await ilsvrc(importArgs(file, out(`valid-${kind}`)), {}, HANG_MS);
      assert.equal(r.code, 0, `${kind}: ${r.stderr}`);
    }
  });

  test('a NaN or infinite weight in ONNX, Caffe or a state dict is refused naming the file and the tensor, nothing written', async () => {
    mkdirSync(join(f.dir, 'out'), { recursive: true });
    for (const kind of ['onnx', 'caffe', 'stateDict'] as const) {
      const target = out(`non-finite-${kind}`);
      const r = await ilsvrc(importArgs(f.nonFinite[kind], target), {}, HANG_MS);
      const source = `"${f.nonFiniteNames[kind]}"`;
      assertUsageError(r, 'Expected finite weights in', f.nonFinite[kind], source, 'NaN or Infinity', 'nothing written');
      assert.ok(!existsSync(target), `${kind}: ${target} was written`);
    }
    assert.deepEqual(
      readdirSync(join(f.dir, 'out')).filter((n) => n.startsWith('.')),
      [],
      'no temp file left behind',
    );
  });

  test('external data outside the folder, through a symlink, a FIFO, past the file, with a NUL or naming the folder', async () => {
    const cases: [keyof HostileFiles['outside'], ...string[]][] = [
      ['symlink', '"link.bin"', `leads to ${f.secret}, outside`],
      ['fifo', '"pipe.bin"', 'which is not a regular file'],
      ['hugeLength', 'asks for bytes 0 to 1000000000000000', 'which has 432'],
      ['nul', 'holds a NUL byte'],
      ['dot', 'its location "."', 'which is a directory'],
      ['climb', 'climbs out with ".."'],
    ];
    const runs = await Promise.all(cases.map(([k]) => ilsvrc(importArgs(f.outside[k], out(`outside-${k}`)), {}, HANG_MS)));
    runs.forEach((r, i) => {
      const [k, ...parts] = cases[i]!;
      assert.notEqual(r.code, -1, `${k}: no exit within ${HANG_MS / 1000} s`);
      assert.doesNotThrow(() => assertUsageError(r, 'tensor "conv1_1.weight"', `beside ${f.outside[k]}`, ...parts), `${k}: ${r.stderr}`);
      assert.ok(!existsSync(out(`outside-${k}`)), `${k}: a checkpoint was written`);
    });
  });

  test('predict and visualize read external data through the same checks', async () => {
    const [ok, fifo, link] = await Promise.all([
      ilsvrc(['visualize', 'filters', f.valid.external, '-o', join(f.dir, 'filters.png')], {}, HANG_MS),
      ilsvrc(['visualize', 'filters', f.outside.fifo, '-o', join(f.dir, 'fifo.png')], {}, HANG_MS),
      ilsvrc(['evaluate', f.outside.symlink], {}, HANG_MS),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assertUsageError(fifo, 'fifo.onnx', '"pipe.bin"', 'not a regular file');
    assertUsageError(link, 'symlink.onnx', '"link.bin"', 'outside');
  });

  test('a name defined twice (ONNX initializer, Caffe layer, safetensors key, checkpoint field) or a cyclic graph', async () => {
    const c = f.contradictions;
    const runs = await Promise.all([
      ilsvrc(importArgs(c.dupInitializer, out('dup-initializer'))),
      ilsvrc(importArgs(c.cycle, out('cycle'))),
      ilsvrc(importArgs(c.dupCaffeLayer, out('dup-layer'))),
      ilsvrc(importArgs(c.dupSafetensorsKey, out('dup-key'))),
      ilsvrc(['export', 'vgg-a', '--checkpoint', c.dupCheckpointField, '-o', join(f.dir, 'dup-field.onnx')]),
    ]);
    const [init, cycle, layer, key, field] = runs;
    assertUsageError(init!, c.dupInitializer, '"conv2_1.weight"', 'defined twice', 'an initializer of dims [8, 4, 3, 3]');
    assertUsageError(cycle!, c.cycle, 'form a cycle', /Conv "conv1_1\/[^"]*" -> Relu/);
    assertUsageError(layer!, c.dupCaffeLayer, 'one layer named "conv1_1"', 'Convolution of [8, 3, 3, 3]', 'Convolution of [4, 3, 3, 3]');
    assertUsageError(key!, c.dupSafetensorsKey, '"fc8.bias" is given twice', '"shape":[2,4]', '"shape":[8]');
    assertUsageError(field!, c.dupCheckpointField, '"epoch" is given twice: 1 and 40');
  });
});

/** A run that stops on a user's mistake: exit 2, its last line on stderr naming it, no stack trace. */
function assertStopped(r: Run, ...parts: string[]): void {
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
  const line = r.stderr.trim().split('\n').pop() ?? '';
  for (const p of parts) assert.ok(line.startsWith('ilsvrc: ') && line.includes(p), `"${line}" should include "${p}"`);
}

describe('train: a folder where the run writes a file', () => {
  const run = (name: string, make: (dir: string) => void) => {
    const dir = join(f.dir, name);
    mkdirSync(dir, { recursive: true });
    make(dir);
    return ilsvrc([...TINY, '--max-steps', '6', '--checkpoint-every', '3', '--out', dir], {}, HANG_MS);
  };

  test("at .last.safetensors.pending, best.safetensors, the lock file and a dead writer's temp name: one line naming it", async () => {
    const [pending, best] = await Promise.all([
      run('pending', (d) => mkdirSync(join(d, '.last.safetensors.pending'))),
      run('best', (d) => mkdirSync(join(d, 'best.safetensors'))),
    ]);
    assertStopped(pending, `cannot write ${join(f.dir, 'pending', '.last.safetensors.pending')}: is a directory`);
    assertStopped(best, `cannot write ${join(f.dir, 'best', 'best.safetensors')}: is a directory`, 'last.safetensors (step 3) is intact');
    const [lock, temp] = await Promise.all([
      run('lock', (d) => mkdirSync(join(d, LOCK_FILE))),
      // A temp name whose writer (pid 999999999) is gone: cleared if a file, left alone if a folder.
      run('temp', (d) => mkdirSync(join(d, '.last.safetensors.999999999.abcd1234.tmp'))),
    ]);
    assertUsageError(lock, `the lock file ${join(f.dir, 'lock', LOCK_FILE)}`, 'it is a folder');
    assert.equal(temp.code, 0, temp.stderr);
    assert.ok(existsSync(join(f.dir, 'temp', '.last.safetensors.999999999.abcd1234.tmp')), "the folder is the user's: left alone");
  });
});
