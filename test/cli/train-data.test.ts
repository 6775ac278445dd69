/**
 * `ilsvrc train` on the data paths a user hits: loader worker threads (--workers) feed the session
 * the same batches as the main thread, and unreadable images are skipped, counted and named on the
 * epoch line and in --json, never replaced by another image.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { ilsvrc } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-train-data-'));
after(() => rmSync(root, { recursive: true, force: true }));

const TINY = [
  'train',
  'vgg-a',
  '--width',
  '0.0625',
  '--input-size',
  '32',
  '--init',
  'kaiming',
  '--threads',
  '1',
  '--seed',
  '5',
  '--steps-per-run',
  '2',
];

function params(file: string): Map<string, Buffer> {
  const c = loadCheckpoint(file);
  return new Map([...c.state.params].map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]));
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

/** root/<class>/<n>.{jpg,png}: small textured images, plus the given unreadable files. */
async function imageFolder(dir: string, bad: Record<string, string | Buffer>): Promise<void> {
  for (let c = 0; c < 2; c++) {
    mkdirSync(join(dir, `class${c}`), { recursive: true });
    for (let k = 0; k < 10; k++) {
      const px = Buffer.alloc(40 * 40 * 3);
      for (let i = 0; i < px.length; i++) px[i] = (c * 90 + k * 13 + (i % 120) * (c ? 2 : 1)) & 0xff;
      const img = sharp(px, { raw: { width: 40, height: 40, channels: 3 } });
      await (k % 2 ? img.png().toFile(join(dir, `class${c}`, `${k}.png`)) : img.jpeg().toFile(join(dir, `class${c}`, `${k}.jpg`)));
    }
  }
  for (const [name, body] of Object.entries(bad)) writeFileSync(join(dir, name), body);
}

// The ImageFolder path with workers runs in the next test; the loader's tests compare every dataset kind's batches.
test('train --workers 2 runs and ends with the weights of --workers 0, to the bit', async () => {
  const outs: string[] = [];
  for (const workers of ['0', '2']) {
    const out = join(root, `workers-${workers}`);
    const r = await ilsvrc([...TINY, '--data', 'synthetic', '--batch-size', '4', '--max-steps', '4', '--workers', workers, '--out', out]);
    assert.equal(r.code, 0, `--workers ${workers}: ${r.stderr}`);
    outs.push(join(out, 'last.safetensors'));
  }
  const [a, b] = outs.map(params);
  for (const [k, v] of a!) assert.ok(v.equals(b!.get(k)!), `${k} differs between --workers 0 and 2`);
});

test('train skips unreadable images (counted and named on the epoch line and in --json); all unreadable is one line, exit 2', async () => {
  const folder = join(root, 'dirty');
  await imageFolder(folder, { 'class0/broken.jpg': 'not a jpeg', 'class1/empty.png': Buffer.alloc(0) });
  const out = join(root, 'dirty-run');
  const r = await ilsvrc([...TINY, '--data', folder, '--batch-size', '4', '--epochs', '1', '--workers', '2', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const epochLine = r.stderr.split('\n').find((l) => l.startsWith('epoch 1/1: ')) ?? '';
  assert.match(epochLine, /skipped unreadable images: (\d+) train, (\d+) val \(.*(broken\.jpg|empty\.png): /);
  const skipped = lastJson(r.stdout)['skipped'] as { train: number; val: number; first: string[] };
  // 22 files, a 10 % stratified split: where the two bad ones land depends on the seed, not on us.
  assert.equal(skipped.train + skipped.val, 2, JSON.stringify(skipped));
  assert.ok(
    skipped.first.some((f) => f.includes('broken.jpg')) && skipped.first.some((f) => f.includes('empty.png')),
    JSON.stringify(skipped),
  );
  assert.match(
    r.stderr,
    /\n  skipped unreadable images: \d+ train, \d+ val \(/,
    'and in the summary at the end (a --max-steps run has no epoch line)',
  );

  const all = join(root, 'all-bad');
  for (const c of ['a', 'b']) {
    mkdirSync(join(all, c), { recursive: true });
    for (let k = 0; k < 6; k++) writeFileSync(join(all, c, `${k}.jpg`), 'nope');
  }
  const bad = await ilsvrc([
    ...TINY,
    '--data',
    all,
    '--batch-size',
    '4',
    '--epochs',
    '1',
    '--workers',
    '2',
    '--out',
    join(root, 'all-bad-run'),
  ]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.doesNotMatch(bad.stderr, /^\s+at /m);
  assert.match(
    bad.stderr.trim().split('\n').pop() ?? '',
    /^ilsvrc: Expected readable images in the training set but every one tried failed \(first: .*\.jpg: not a readable image/,
  );
});
