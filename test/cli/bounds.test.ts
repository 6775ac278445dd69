/**
 * Every count a user gives is bounded by the machine (cores, the memory budget) or the data:
 * refused in one line, exit 2, before a thread, a session or the run folder exists, or run with a
 * note where more than there is means all of it. Each run is held to 4 GB of address space and
 * 30 s, so a build without the bounds fails the test instead of eating the machine.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSynthetic } from '../../src/data/index.js';
import { assertUsageError, ilsvrc, TINY, type Run } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-bounds-'));
after(() => rmSync(root, { recursive: true, force: true }));

const MAX_THREADS = 4 * availableParallelism();

/** The CLI under `ulimit -v` 4 GB (a normal run fits), killed after 30 s. */
function bounded(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return ilsvrc(args, env, 30_000, 4_194_304);
}

/** A refusal of a training run: one line, within seconds, and no run folder left behind. */
async function refusedRun(args: readonly string[], env: NodeJS.ProcessEnv, ...parts: (string | RegExp)[]): Promise<void> {
  const out = join(root, `run-${Math.random().toString(36).slice(2)}`);
  const r = await bounded([...TINY, '--max-steps', '1', ...args, '--out', out], env);
  assertUsageError(r, ...parts);
  assert.ok(r.seconds < 20, `refused after ${r.seconds} s`);
  assert.equal(existsSync(out), false, 'the refused run made its folder');
}

test('train --threads above 4 × the cores is refused in one line before the run folder is made', async () => {
  for (const n of [1_000_000, MAX_THREADS + 1]) {
    await refusedRun(['--threads', String(n)], {}, `Expected at most ${MAX_THREADS} for --threads`, 'cores', `received ${n}`);
  }
});

test('train --workers above 4 × the cores, or beyond the memory budget, is refused before the run folder is made', async () => {
  await refusedRun(['--workers', '10000'], {}, `Expected at most ${MAX_THREADS} for --workers`, 'received 10000');
  // Two pools (train and val) of 2 threads at ~24 MB each do not fit 64 MB.
  await refusedRun(['--workers', '2'], { ILSVRC_MEMORY_BUDGET: '64M' }, '--workers 2', 'memory budget (64.0 MB, ILSVRC_MEMORY_BUDGET)');
});

test('a batch beyond the data or a training step beyond the memory budget is refused naming --batch-size, before the run folder is made', async () => {
  await refusedRun(['--batch-size', '1000000', '--input-size', '224'], {}, 'for --batch-size 1000000', 'the data has 1920');
  const step = 'a training step of --batch-size 1024 at --input-size 224';
  await refusedRun(['--batch-size', '1024', '--input-size', '224'], { ILSVRC_MEMORY_BUDGET: '2G' }, step, 'memory budget (2.0 GB');
});

test('--width and --classes whose weights do not fit are refused: by the parser past its ceiling, by the budget below it', async () => {
  await refusedRun(['--width', '1000'], {}, 'the weights and optimizer state of vgg-a at --width 1000', 'memory budget');
  await refusedRun(['--width', '2000'], {}, 'Expected a positive number up to 1024 for --width but received "2000"');
  await refusedRun(['--classes', '100000000'], {}, 'Expected a positive integer up to 1048576 for --classes but received "100000000"');
  const onnx = join(root, 'wide.onnx');
  const r = await bounded(['export', 'vgg-a', '--classes', '1000000', '-o', onnx], { ILSVRC_MEMORY_BUDGET: '8G' });
  assertUsageError(r, 'the weights of vgg-a', 'memory budget (8.0 GB, ILSVRC_MEMORY_BUDGET)');
  assert.equal(existsSync(onnx), false);
});

test('--steps-per-run whose stacked batches do not fit the budget is refused; a run never stacks more than an epoch', async () => {
  // 120 steps per epoch at batch 16: --steps-per-run 1000 stacks 120 batches (~54 MB), 3 stack 1.4 MB.
  const budget = { ILSVRC_MEMORY_BUDGET: '30M' };
  await refusedRun(['--steps-per-run', '1000'], budget, '--steps-per-run 1000 (120 stacked batches', 'memory budget');
  const ok = await bounded([...TINY, '--max-steps', '1', '--out', join(root, 'k-ok')], budget);
  assert.equal(ok.code, 0, ok.stderr);
});

let ckpt = '';
let image = '';
before(async () => {
  const out = join(root, 'model');
  const r = await ilsvrc([...TINY, '--max-steps', '1', '--out', out], {}, 120_000);
  assert.equal(r.code, 0, r.stderr);
  ckpt = join(out, 'last.safetensors');
  const syn = await generateSynthetic();
  image = join(syn.dir, 'val', 'circle', readdirSync(join(syn.dir, 'val', 'circle'))[0]!);
});

test("predict --top above the model's classes shows them all with a note; above 2^20 it is refused", async () => {
  const r = await bounded(['predict', ckpt, image, '--top', '1000000', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { top: unknown[] }[])[0]!.top.length, 8);
  assert.match(r.stderr, /^ilsvrc: note: --top 1000000 is more than the model's 8 classes: showing 8$/m);
  assertUsageError(await bounded(['predict', ckpt, image, '--top', '2000000']), 'Expected a positive integer up to 1048576 for --top');
});

test('visualize: channel ranges, threads, occlusion grids and batches beyond the machine are refused in one line', async () => {
  assertUsageError(await bounded(['visualize', 'deconvnet', ckpt, image, '--channel', '0-1000000000']), 'for --channel', 'at most 1048576');
  const threads = await bounded(['visualize', 'filters', ckpt, '--threads', '1000000', '-o', join(root, 'f.png')]);
  assertUsageError(threads, `Expected at most ${MAX_THREADS} for --threads`);
  // 32 × 32 positions of a 1 px square: 1024 copies of the 12 KB image.
  const png = join(root, 'o.png');
  const occlusion = ['visualize', 'occlusion', ckpt, image, '-o', png];
  const grid = await bounded([...occlusion, '--size', '1', '--stride', '1', '--batch', '1'], { ILSVRC_MEMORY_BUDGET: '10M' });
  assertUsageError(grid, '--stride 1 with --size 1 (32×32 occluded copies', 'memory budget');
  assertUsageError(await bounded([...occlusion, '--batch', '1000000']), '--batch 4000000', 'memory budget');
  assert.equal(existsSync(png), false);
});

test('evaluate --threads above 4 × the cores is refused before a session or the --out folder', async () => {
  const out = join(root, 'eval');
  const r = await bounded(['evaluate', ckpt, '--threads', '1000000', '--out', out]);
  assertUsageError(r, `Expected at most ${MAX_THREADS} for --threads`);
  assert.equal(existsSync(out), false);
});
