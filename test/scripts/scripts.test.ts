// The benchmark and check scripts run end to end on small settings and end with their one JSON
// line (their figures are reported by hand from full runs, never asserted here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeIdx } from '../../src/data/idx.js';
import { Rng } from '../../src/util/rng.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ilsvrc-scripts-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A Fashion-MNIST-shaped IDX folder of random 28×28 images and labels 0–9. */
function tinyIdx(dir: string, train: number, test: number): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(11);
  for (const [prefix, n] of [
    ['train', train],
    ['t10k', test],
  ] as const) {
    writeFileSync(
      join(dir, `${prefix}-images-idx3-ubyte`),
      encodeIdx({ dims: [n, 28, 28], data: Uint8Array.from({ length: n * 784 }, () => rng.int(256)) }),
    );
    writeFileSync(
      join(dir, `${prefix}-labels-idx1-ubyte`),
      encodeIdx({ dims: [n], data: Uint8Array.from({ length: n }, () => rng.int(10)) }),
    );
  }
}

function lastJson(cmd: string, args: string[], timeout = 120_000): Record<string, unknown> {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

describe('scripts', () => {
  it('gpu-check --quick: the CPU rows train and agree, the others say why they did not load', () => {
    const j = lastJson(join(root, 'scripts/gpu-check'), ['--quick']) as {
      rows: { provider: string; loaded: boolean; loss_agrees: boolean | null; train_img_s: number | null; error: string | null }[];
    };
    const cpu = j.rows.filter((r) => r.provider === 'cpu');
    assert.equal(cpu.length, 2);
    for (const r of cpu) {
      assert.equal(r.loaded, true);
      assert.equal(r.loss_agrees, true);
      assert.ok((r.train_img_s ?? 0) > 0);
    }
    for (const r of j.rows.filter((x) => x.provider !== 'cpu' && !x.loaded)) assert.match(r.error ?? '', /--device (cuda|webgpu)/);
  });

  it('torture: a table and one JSON line {cases, passed, failed}; an unknown case is one line, exit 2', () => {
    const j = lastJson(join(root, 'scripts/torture'), ['--quick', '--cases', 'stale-lock-and-temps']);
    assert.deepEqual([j['cases'], j['passed'], j['failed']], [1, 1, 0]);
    const r = spawnSync(join(root, 'scripts/torture'), ['--cases', 'nope'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^Expected case names .* for --cases but received "nope"\n$/);
  });

  it('profile-step: one step broken down by op type and provider', () => {
    const j = lastJson(process.execPath, [
      'dist/scripts/profile-step.js',
      '--model',
      'nin',
      '--batch',
      '1',
      '--steps',
      '2',
      '--threads',
      '1',
    ]) as { model: string; step_ms: number; by_op: Record<string, number> };
    assert.equal(j.model, 'nin');
    assert.ok(j.step_ms > 0);
    const ops = Object.keys(j.by_op);
    assert.ok(
      ops.some((k) => /Conv.* @ CPU/.test(k)),
      ops.join(', '),
    );
    const total = Object.values(j.by_op).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 0.02, `shares sum to ${total}`);
  });

  it('a bad option is one line naming it, exit 2', () => {
    for (const [script, flag, value] of [
      ['dist/scripts/profile-step.js', '--batch', '0'],
      ['dist/scripts/bench-train.js', '--k', 'four'],
      ['dist/scripts/bench-data.js', '--images', '-3'],
    ] as const) {
      const r = spawnSync(process.execPath, [script, flag, value], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 2, `${script} ${flag} ${value}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), `Expected an integer ≥ 1 for ${flag} but received "${value}"`);
    }
  });

  it('bench-data on a small corpus: all four figures (the peer ones null without torchvision), the CPU and the peer named', () => {
    const j = lastJson(
      join(root, 'scripts/bench-data'),
      ['--images', '24', '--epochs', '1', '--repeat', '1', '--dir', join(work, 'corpus')],
      300_000,
    );
    assert.deepEqual(Object.keys(j).sort(), [
      'cpu',
      'forced_env',
      'img_s_1core',
      'img_s_2core',
      'peer',
      'peer_img_s_1core',
      'peer_img_s_2core',
    ]);
    assert.ok((j['img_s_1core'] as number) > 0 && (j['img_s_2core'] as number) > 0);
    assert.ok(((j['cpu'] as { cores: number }).cores ?? 0) >= 1);
  });

  it('bench-fmnist on a small IDX folder: both sides through their real front ends, the CPU and the peer named', () => {
    const dir = join(work, 'fmnist');
    tinyIdx(dir, 128, 64);
    const j = lastJson(
      join(root, 'scripts/bench-fmnist'),
      ['--epochs', '1', '--dir', dir, '--batch', '64', '--width', '0.0625', '--size', '32'],
      300_000,
    ) as {
      epoch_s: number;
      peer_epoch_s: number | null;
      top1: number;
      peer_top1: number | null;
      cpu: { model: string; isa: string[] };
      peer: { torch: string | null };
    };
    assert.ok(j.epoch_s > 0, `epoch_s ${j.epoch_s}`);
    assert.ok(j.top1 >= 0 && j.top1 <= 1);
    assert.ok(j.cpu.model.length > 0);
    if (j.peer.torch) {
      assert.ok((j.peer_epoch_s ?? 0) > 0);
      assert.ok((j.peer_top1 ?? -1) >= 0 && (j.peer_top1 ?? 2) <= 1);
    } else {
      assert.equal(j.peer_epoch_s, null);
    }
  });

  it('bench-fmnist without the data set: one line naming --dir, exit 2', () => {
    const r = spawnSync(process.execPath, ['dist/scripts/bench-fmnist.js', '--dir', join(work, 'nowhere')], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.trim(), /^Expected a Fashion-MNIST IDX folder .* for --dir but received ".*nowhere"/);
  });
});
