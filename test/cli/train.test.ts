/**
 * `ilsvrc train` as a user runs it, in child processes: a shortened demo learns; a run killed with
 * SIGKILL mid-epoch and resumed ends with exactly the weights of an uninterrupted run; SIGINT writes
 * a checkpoint and exits 0; bad flags are one line. The fault cases (full disk, locks, divergence)
 * are in faults.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { readEvents } from '../../src/train/tensorboard.js';
import { assertUsageError, ilsvrc, MAIN, TINY } from './run.js';
import { trained } from './fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-train-'));
after(() => rmSync(root, { recursive: true, force: true }));

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

function sameParams(a: string, b: string): void {
  const x = loadCheckpoint(a);
  const y = loadCheckpoint(b);
  assert.equal(y.state.step, x.state.step);
  assert.equal(y.state.rng, x.state.rng);
  for (const [name, p] of x.state.params)
    assert.ok(
      Buffer.from(p.buffer, p.byteOffset, p.byteLength).equals(
        Buffer.from(y.state.params.get(name)!.buffer, y.state.params.get(name)!.byteOffset, y.state.params.get(name)!.byteLength),
      ),
      `${name} differs`,
    );
  for (const [name, s] of x.state.states) assert.deepEqual(y.state.states.get(name), s, name);
}

test('the demo, shortened to 3 epochs, reaches 50 % (chance: 12.5 %) and writes every output', async () => {
  const out = join(root, 'demo');
  const r = await ilsvrc(['train', '--epochs', '3', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout);
  assert.equal(j['epochs'], 3);
  // 8 classes: chance is 12.5 %.
  assert.ok((j['best_top1'] as number) >= 0.5, `best top-1 ${j['best_top1']}`);
  for (const f of [
    'last.safetensors',
    'best.safetensors',
    'metrics.jsonl',
    'metrics.csv',
    'loss.png',
    'accuracy.png',
    'lr.png',
    'classes.json',
  ])
    assert.ok(existsSync(join(out, f)), f);
  assert.match(r.stderr, /epoch 3\/3: train loss [\d.]+ top-1 [\d.]+% \| val loss/);
  assert.equal(readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').length, 4);
  assert.match(readFileSync(join(out, 'metrics.csv'), 'utf8'), /,img_per_s,data_wait_s\n/);
  for (const line of readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const row = JSON.parse(line) as { data_wait_s: number; seconds: number };
    assert.ok(row.data_wait_s >= 0 && row.data_wait_s < row.seconds, line);
  }
  // TensorBoard: the event file parses with its CRCs checked, and holds the curves.
  const ev = readdirSync(out).find((f) => f.startsWith('events.out.tfevents.'));
  assert.ok(ev);
  const tags = new Set(readEvents(join(out, ev)).flatMap((e) => e.scalars.map((s) => s.tag)));
  for (const t of ['train/loss', 'train/lr', 'val/top1', 'val/top5']) assert.ok(tags.has(t), t);
});

// vgg-a-bn: batch norm's running statistics are in the checkpoint and resume as exactly as the weights.
for (const model of ['vgg-a', 'vgg-a-bn']) {
  test(`kill -9 mid-epoch, then --resume: the same final weights as an uninterrupted run (${model})`, async () => {
    const args = [...TINY.map((a) => (a === 'vgg-a' ? model : a)), '--max-steps', '30', '--checkpoint-every', '3'];
    const straight = join(root, `straight-${model}`);
    const r = await ilsvrc([...args, '--out', straight]);
    assert.equal(r.code, 0, r.stderr);

    const killed = join(root, `killed-${model}`);
    const child = spawn(process.execPath, [MAIN, ...args, '--out', killed], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_c, sig) => res(sig)));
    const ckpt = join(killed, 'last.safetensors');
    while (!existsSync(ckpt)) await new Promise((res) => setTimeout(res, 5));
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const at = loadCheckpoint(ckpt).meta;
    assert.ok(at.step < 30 && at.batchInEpoch > 0, `killed at step ${at.step}, batch ${at.batchInEpoch}: mid-epoch`);

    const resumed = await ilsvrc(['train', '--resume', ckpt, '--threads', '1']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resuming ${model}`));
    sameParams(join(straight, 'last.safetensors'), ckpt);
    if (model.endsWith('-bn')) assert.ok(loadCheckpoint(ckpt).state.params.has('conv1_1_bn.running_var'));
  });
}

test('vgg-a-bn --from a checkpoint with --freeze features: the batch norm layers keep their running statistics (eval mode), fc8 trains', async () => {
  const bnTiny = TINY.map((a) => (a === 'vgg-a' ? 'vgg-a-bn' : a));
  const from = join(await trained([...bnTiny, '--augment', 'none', '--max-steps', '9']), 'last.safetensors');
  const out = join(root, 'bn-frozen');
  const r = await ilsvrc([...bnTiny, '--augment', 'none', '--from', from, '--freeze', 'features', '--max-steps', '3', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = [loadCheckpoint(from).state.params, loadCheckpoint(join(out, 'last.safetensors')).state.params];
  for (const name of ['conv1_1_bn.running_mean', 'conv5_2_bn.running_var', 'conv5_2_bn.weight', 'conv3_1.weight'])
    assert.deepEqual(b.get(name), a.get(name), name);
  assert.notDeepEqual(b.get('fc8.weight'), a.get('fc8.weight'));
});

test('SIGINT finishes the current run, writes a checkpoint and exits 0', async () => {
  const out = join(root, 'sigint');
  const child = spawn(process.execPath, [MAIN, ...TINY, '--epochs', '50', '--out', out, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  while (!stderr.includes('training vgg-a')) await new Promise((res) => setTimeout(res, 20));
  await new Promise((res) => setTimeout(res, 2500));
  child.kill('SIGINT');
  assert.equal(await code, 0, stderr);
  assert.match(stderr, /SIGINT: finishing the current run/);
  assert.match(stderr, /continue with: ilsvrc train --resume/);
  assert.equal(lastJson(stdout)['reason'], 'interrupted');
  const meta = loadCheckpoint(join(out, 'last.safetensors')).meta;
  assert.equal(meta.model, 'vgg-a');
  assert.ok(meta.step >= 0);
});

test('a --max-steps run says so in its header, records its part of an epoch and plots it', async () => {
  const out = join(root, 'smoke');
  const r = await ilsvrc([...TINY, '--max-steps', '6', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /10 epochs \(stopping at step 6: --max-steps\), batch 16/);
  assert.match(r.stderr, /^epoch 0\.05\/10 \(step 6\): train loss \d/m);
  assert.match(r.stderr, /^stopped at --max-steps after 0\.05 epochs \(6 steps\) in .*\(epoch 0\.05\)$/m);
  for (const f of ['metrics.jsonl', 'metrics.csv', 'loss.png', 'accuracy.png', 'lr.png']) assert.ok(existsSync(join(out, f)), f);
  const row = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8')) as { epoch: number; step: number };
  assert.deepEqual([row.epoch, row.step], [0.05, 6]);
});

test('transfer learning: --from a checkpoint, --freeze features, --reset-classifier', async () => {
  const from = join(root, 'demo', 'best.safetensors'); // written by the demo test above
  const out = join(root, 'transfer');
  const r = await ilsvrc([...TINY, '--from', from, '--freeze', 'features', '--reset-classifier', '--max-steps', '4', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const a = loadCheckpoint(from).state.params;
  const b = loadCheckpoint(join(out, 'last.safetensors'));
  assert.deepEqual(b.state.params.get('conv3_1.weight'), a.get('conv3_1.weight'), 'frozen conv layers stay as loaded');
  assert.notDeepEqual(b.state.params.get('fc8.weight'), a.get('fc8.weight'));
  assert.ok(b.meta.run?.frozen.includes('conv1_1.bias') && !b.meta.run.frozen.includes('fc6.weight'));
});

test('bad flags: one line, exit 2', async () => {
  assertUsageError(await ilsvrc(['train', '--lr', 'fast']), 'Expected a positive number for --lr but received "fast"');
  assertUsageError(await ilsvrc(['train', '--device', 'cuda:0']), '--device cuda:0', 'CUDA provider');
  assertUsageError(await ilsvrc(['train', '--device', 'tpu']), '--device');
  assertUsageError(await ilsvrc(['train', '--schedule', 'linear']), '--schedule');
  assertUsageError(await ilsvrc(['train', 'vgg-z']), 'model');
  assertUsageError(await ilsvrc(['train', 'vgg-a', '--data', join(root, 'no-such-dir')]), 'does not exist');
  assertUsageError(await ilsvrc(['train', '--resume', join(root, 'none.safetensors')]), '--resume');
  assertUsageError(await ilsvrc([...TINY, '--freeze', 'conv9']), '--freeze');
});
