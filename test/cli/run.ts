/** Runs the built CLI (`node dist/src/cli/main.js …`) in a child process, as a user would. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI under test: this build's, or another build's entry point given in ILSVRC_CLI. */
export const MAIN = process.env['ILSVRC_CLI'] || fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A tiny VGG on the synthetic shapes: a few seconds per run; 120 steps per epoch at batch 16. */
export const TINY = [
  'train',
  'vgg-a',
  '--data',
  'synthetic',
  '--width',
  '0.0625',
  '--input-size',
  '32',
  '--init',
  'kaiming',
  '--batch-size',
  '16',
  '--threads',
  '1',
  '--seed',
  '5',
  '--steps-per-run',
  '3',
];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall seconds until the process had exited. */
  seconds: number;
  /** The process's id (a lock's refusal names its holder by it). */
  pid?: number;
}

/**
 * `timeoutMs`: SIGKILL the process after this long (code -1): a hang fails the test instead of the
 * suite. `virtualKb`: run it under `ulimit -v` of this many KiB, so a runaway allocation fails fast.
 */
export function ilsvrc(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 0, virtualKb = 0): Promise<Run> {
  const t0 = Date.now();
  const [file, argv] =
    virtualKb > 0
      ? ['/bin/sh', ['-c', `ulimit -v ${virtualKb} && exec "$@"`, 'sh', process.execPath, MAIN, ...args]]
      : [process.execPath, [MAIN, ...args]];
  return new Promise((resolve) => {
    const options = { env: { ...process.env, ILSVRC_DEBUG: '', ...env }, maxBuffer: 1 << 26, timeout: timeoutMs };
    const child = execFile(file, argv, { ...options, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err && typeof err.code === 'number' ? err.code : err ? -1 : 0;
      resolve({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000, ...(child.pid !== undefined ? { pid: child.pid } : {}) });
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

/** A CLI process left running, its output gathered as it comes, for tests that signal it. */
export interface Started {
  stdout(): string;
  stderr(): string;
  /** Sends `signal` and resolves when the process has exited: its code and the seconds since the signal. */
  signal(signal: NodeJS.Signals): Promise<{ code: number | null; seconds: number }>;
  /** Resolves true once `pattern` is on stderr, false after `ms` (or when the process ended first). */
  waitFor(pattern: RegExp, ms: number): Promise<boolean>;

  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

export function start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Started {
  const env2 = { ...process.env, ILSVRC_DEBUG: '', ...env };
  const child = spawn(process.execPath, [MAIN, ...args], { env: env2, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    stdout: () => out,
    stderr: () => err,
    exited,
    async signal(signal) {
      const t0 = Date.now();
      child.kill(signal);
      // A process that will not stop is killed after a minute, so the test fails rather than hangs.
      const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(guard);
      return { code, seconds: (Date.now() - t0) / 1000 };
    },
    async waitFor(pattern, ms) {
      const end = Date.now() + ms;
      while (!pattern.test(err) && !ended && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return pattern.test(err);
    },
  };
}
