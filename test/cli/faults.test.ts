/**
 * The fault cases of scripts/torture-cases.ts, each as a test (scripts/torture's short form): a
 * full disk at three moments (a real tmpfs; skipped, visibly, when the tests cannot mount one),
 * kill -9 then --resume, two runs on one folder, --resume against a live run, a stale lock, a
 * diverging run whose named checkpoint must evaluate finite, NaN weights, and resumes whose
 * records must cover the whole epoch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CASES } from '../../scripts/torture-cases.js';
import { Rng } from '../../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-faults-'));
after(() => rmSync(root, { recursive: true, force: true }));
const canMount = process.getuid?.() === 0 && process.platform === 'linux';

for (const c of CASES) {
  const skip = c.needsMount && !canMount ? 'needs root to mount a small tmpfs (the full-disk cases)' : false;
  test(`${c.name}: ${c.what}`, { skip }, async () => {
    await c.run({ dir: join(root, c.name), rng: new Rng(7).fork(c.name), quick: true });
  });
}
