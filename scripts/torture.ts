/**
 * scripts/torture: the fault cases of scripts/torture-cases.ts end to end against the built CLI —
 * a full disk at three moments, kill -9 at random moments (repeatable with --seed), two runs on
 * one folder, stale locks, a diverging run, resumes — and prints a table and one JSON line
 * {cases, passed, failed, skipped}. Exit 1 when a case fails.
 *
 * Options: --seed N (default 1), --quick (fewer repetitions), --cases a,b (only these).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng.js';
import { arg, intArg } from './args.js';
import { CASES } from './torture-cases.js';

const seed = intArg('seed', 1, 0);
const quick = process.argv.includes('--quick');
const only = arg('cases', '').split(',').filter(Boolean);
const unknown = only.filter((n) => !CASES.some((c) => c.name === n));
if (unknown.length) {
  process.stderr.write(`Expected case names (${CASES.map((c) => c.name).join(', ')}) for --cases but received "${unknown.join(',')}"\n`);
  process.exit(2);
}
const canMount = process.getuid?.() === 0 && process.platform === 'linux';
const root = mkdtempSync(join(os.tmpdir(), 'ilsvrc-torture-'));
const rows: { name: string; what: string; result: 'pass' | 'FAIL' | 'skip'; note: string; seconds: number }[] = [];
process.stdout.write(
  `torture on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), seed ${seed}${quick ? ', quick' : ''}\n`,
);
try {
  for (const c of CASES.filter((x) => only.length === 0 || only.includes(x.name))) {
    const t0 = Date.now();
    if (c.needsMount && !canMount) {
      rows.push({ name: c.name, what: c.what, result: 'skip', note: 'needs root to mount a small tmpfs', seconds: 0 });
      continue;
    }
    const dir = join(root, c.name);
    try {
      const note = await c.run({ dir, rng: new Rng(seed).fork(c.name), quick });
      rows.push({ name: c.name, what: c.what, result: 'pass', note: note ?? '', seconds: (Date.now() - t0) / 1000 });
    } catch (e) {
      rows.push({
        name: c.name,
        what: c.what,
        result: 'FAIL',
        note: (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '',
        seconds: (Date.now() - t0) / 1000,
      });
    }
    const r = rows[rows.length - 1]!;
    process.stderr.write(`  ${r.result} ${r.name} (${r.seconds.toFixed(1)} s)\n`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
const w = Math.max(...rows.map((r) => r.name.length), 4);
const v = Math.max(...rows.map((r) => r.what.length), 4);
process.stdout.write(`${'case'.padEnd(w)}  ${'what'.padEnd(v)}  result  seconds  note\n`);
for (const r of rows)
  process.stdout.write(`${r.name.padEnd(w)}  ${r.what.padEnd(v)}  ${r.result.padEnd(6)}  ${r.seconds.toFixed(1).padStart(7)}  ${r.note}\n`);
const count = (x: string) => rows.filter((r) => r.result === x).length;
process.stdout.write(
  JSON.stringify({
    cases: rows.length,
    passed: count('pass'),
    failed: count('FAIL'),
    skipped: count('skip'),
    seed,
    cpu: os.cpus()[0]?.model ?? null,
  }) + '\n',
);
process.exitCode = count('FAIL') > 0 ? 1 : 0;
