/** Runs the built CLI (`node dist/src/cli/main.js …`) in a child process, as a user would. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function ilsvrc(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, ILSVRC_DEBUG: '', ...env }, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      const code = err && typeof err.code === 'number' ? err.code : err ? -1 : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A user mistake: exit 2, nothing on stdout, one line on stderr, no stack frames. */
export function assertUsageError(r: Run, ...parts: readonly (string | RegExp)[]): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  const line = lines[0] ?? '';
  assert.match(line, /^ilsvrc: /);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(line.includes(p), `"${line}" should include "${p}"`);
    else assert.match(line, p);
  }
}
