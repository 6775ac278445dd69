// The benchmark and check scripts run end to end on small settings and end with their one JSON
// line (their figures are reported by hand from full runs, never asserted here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ilsvrc-scripts-'));
after(() => rmSync(work, { recursive: true, force: true }));

function lastJson(cmd: string, args: string[], timeout = 120_000): Record<string, unknown> {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

describe('scripts', () => {
  it('gpu-check --quick: the CPU rows train and agree, the others say why they did not load', () => {
    const j = lastJson(join(root, 'scripts/gpu-check'), ['--quick']) as { rows: { provider: string; loaded: boolean; loss_agrees: boolean | null; train_img_s: number | null; error: string | null }[] };
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
    const j = lastJson(process.execPath, ['dist/scripts/profile-step.js', '--model', 'nin', '--batch', '1', '--steps', '2', '--threads', '1']) as { model: string; step_ms: number; by_op: Record<string, number> };
    assert.equal(j.model, 'nin');
    assert.ok(j.step_ms > 0);
    const ops = Object.keys(j.by_op);
    assert.ok(ops.some((k) => /Conv.* @ CPU/.test(k)), ops.join(', '));
    const total = Object.values(j.by_op).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 0.02, `shares sum to ${total}`);
  });

  it('a bad option is one line naming it, exit 2', () => {
    for (const [script, flag, value] of [['dist/scripts/profile-step.js', '--batch', '0'], ['dist/scripts/bench-train.js', '--k', 'four'], ['dist/scripts/bench-data.js', '--images', '-3']] as const) {
      const r = spawnSync(process.execPath, [script, flag, value], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 2, `${script} ${flag} ${value}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), `Expected an integer ≥ 1 for ${flag} but received "${value}"`);
    }
  });

  it('bench-data on a small corpus: all four figures (the peer ones null without torchvision)', () => {
    const j = lastJson(join(root, 'scripts/bench-data'), ['--images', '24', '--epochs', '1', '--repeat', '1', '--dir', join(work, 'corpus')], 300_000);
    assert.deepEqual(Object.keys(j).sort(), ['img_s_1core', 'img_s_2core', 'peer_img_s_1core', 'peer_img_s_2core']);
    assert.ok((j['img_s_1core'] as number) > 0 && (j['img_s_2core'] as number) > 0);
  });
});
