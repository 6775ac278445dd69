/**
 * Trained runs shared by the tests that need a checkpoint but do not test training: each argument list
 * trains once per build of the CLI, whichever test process asks first, and every later caller (in this
 * process or another one of the suite) gets the same folder.
 *
 * The cache is `<tmpdir>/ilsvrc-fixtures-<build>/<args>/run/`, `<build>` a hash of the CLI's compiled
 * sources, native addons and runtime, so a rebuild never sees another build's runs. A run is trained in
 * a temporary folder and renamed into place, so a folder that exists is complete; a process that finds
 * another training the same run waits for it (or trains its own when that one died). Other builds'
 * caches are removed beyond the newest few (`KEEP_BUILDS`) once untouched for ten minutes.
 *
 * A fixture is read-only: a test that writes (`evaluate` without `--out` writes confusion.csv beside the
 * model; `train --resume` writes into the run) works on `copyOf(fixture)`. The files are made read-only,
 * and each one handed out is checked against the hashes taken when it was trained, when handed out and
 * after this process's tests, so a test that writes into it fails even where permissions do not stop it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after } from 'node:test';
import { ilsvrc, MAIN } from './run.js';

const PREFIX = 'ilsvrc-fixtures-';
const KEEP_BUILDS = 6;
const IDLE_MS = 10 * 60_000;
/** A training that takes longer is a hang: the waiting processes train their own. */
const TRAIN_MS = 10 * 60_000;

/** Every file under `dir` (relative paths, sorted). */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** relative path → sha256 of every file under `dir`. */
function hashes(dir: string): Record<string, string> {
  return Object.fromEntries(
    files(dir).map((f) => [
      f,
      createHash('sha256')
        .update(readFileSync(join(dir, f)))
        .digest('hex'),
    ]),
  );
}

let build: string | undefined;
/** The CLI's build: its compiled sources, native addons, Node's version and onnxruntime's; computed once per process. */
export function buildKey(): string {
  if (build !== undefined) return build;
  const src = resolve(dirname(MAIN), '..');
  const root = resolve(src, '../..');
  const h = createHash('sha256').update(process.version);
  for (const dir of [src, join(root, 'build', 'native')]) {
    if (!existsSync(dir)) continue;
    for (const f of files(dir)) h.update(`\0${f}\0`).update(readFileSync(join(dir, f)));
  }
  const ort = join(root, 'node_modules', 'onnxruntime-node', 'package.json');
  if (existsSync(ort)) h.update(readFileSync(ort));
  return (build = h.digest('hex').slice(0, 16));
}

function writable(dir: string, yes: boolean): void {
  for (const f of files(dir)) chmodSync(join(dir, f), yes ? 0o644 : 0o444);
  const dirs = [dir, ...files(dir).map((f) => dirname(join(dir, f)))];
  for (const d of new Set(dirs)) chmodSync(d, yes ? 0o755 : 0o555);
}

function remove(dir: string): void {
  try {
    writable(dir, true);
  } catch {
    // Already gone or never made read-only: rmSync below says all there is to say.
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Removes other builds' caches beyond the newest KEEP_BUILDS, once none of them has been used for IDLE_MS. */
function prune(current: string): void {
  const now = Date.now();
  const others = readdirSync(tmpdir())
    .filter((n) => n.startsWith(PREFIX) && join(tmpdir(), n) !== current)
    .map((n) => ({ dir: join(tmpdir(), n), t: statSync(join(tmpdir(), n), { throwIfNoEntry: false })?.mtimeMs ?? now }))
    .sort((a, b) => b.t - a.t);
  for (const o of others.slice(KEEP_BUILDS - 1)) if (now - o.t > IDLE_MS) remove(o.dir);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `lock` (true), or waits while a live process holds it: false once `done` is there, a retake once the holder has gone. */
async function take(lock: string, done: string): Promise<boolean> {
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const t0 = Date.now();
    for (;;) {
      if (existsSync(done)) return false;
      const since = statSync(lock, { throwIfNoEntry: false });
      if (!since) break;
      let pid = NaN;
      try {
        pid = Number(readFileSync(lock, 'utf8') || NaN);
      } catch {
        continue;
      }
      const stale = Number.isInteger(pid) ? !alive(pid) : Date.now() - since.mtimeMs > 30_000;
      if (stale || Date.now() - t0 > TRAIN_MS) {
        rmSync(lock, { force: true });
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

interface Fixture {
  args: string[];
  hashes: Record<string, string>;
}

const pending = new Map<string, Promise<string>>();
const handedOut = new Map<string, Fixture>();
const copies: string[] = [];

function check(run: string, f: Fixture): void {
  const what = `the shared training run ${run} (${f.args.join(' ')})`;
  assert.deepEqual(hashes(run), f.hashes, `${what} was changed: a test wrote into it; copy it with copyOf first`);
}

async function make(args: readonly string[]): Promise<string> {
  const buildDir = join(tmpdir(), `${PREFIX}${buildKey()}`);
  mkdirSync(buildDir, { recursive: true });
  const key = createHash('sha256').update(JSON.stringify(args)).digest('hex').slice(0, 16);
  const done = join(buildDir, key);
  const run = join(done, 'run');
  if (!existsSync(done) && (await take(`${done}.lock`, done))) {
    try {
      if (!existsSync(done)) {
        const tmp = mkdtempSync(`${done}.tmp-`);
        try {
          const t = await ilsvrc([...args, '--out', join(tmp, 'run')], {}, TRAIN_MS);
          if (t.code !== 0) throw new Error(`training the shared run (${args.join(' ')}) exited ${t.code}: ${t.stderr}`);
          const fixture: Fixture = { args: [...args], hashes: hashes(join(tmp, 'run')) };
          writeFileSync(join(tmp, 'fixture.json'), JSON.stringify(fixture));
          writable(tmp, false);
          try {
            renameSync(tmp, done);
          } catch (e) {
            // Another process finished the same run first (its lock was taken as stale): keep that one.
            if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
          }
        } finally {
          if (existsSync(tmp)) remove(tmp);
        }
      }
    } finally {
      rmSync(`${done}.lock`, { force: true });
    }
  }
  const now = new Date();
  utimesSync(buildDir, now, now);
  prune(buildDir);
  const fixture = JSON.parse(readFileSync(join(done, 'fixture.json'), 'utf8')) as Fixture;
  assert.deepEqual(fixture.args, [...args], `${done} holds the run of other arguments`);
  try {
    check(run, fixture);
  } catch (e) {
    // Removed, so that the next run trains it again rather than failing on it too.
    remove(done);
    throw e;
  }
  handedOut.set(run, fixture);
  return run;
}

/**
 * The run folder (`last.safetensors`, `best.safetensors`, `classes.json`, metrics…) of `ilsvrc <args>
 * --out <folder>`, trained at most once per build; read-only: copy it with `copyOf` before writing.
 */
export function trained(args: readonly string[]): Promise<string> {
  const own = args.find((a) => ['--out', '-o', '--resume'].includes(a));
  if (own) throw new Error(`a shared training run chooses its own folder, so takes no ${own}: ${args.join(' ')}`);
  const key = JSON.stringify(args);
  let p = pending.get(key);
  if (!p) pending.set(key, (p = make(args)));
  return p;
}

/** A writable copy of `fixture` (removed after this process's tests); the file's path inside it is the same. */
export function copyOf(fixture: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-fixture-copy-'));
  copies.push(dir);
  cpSync(fixture, dir, { recursive: true });
  writable(dir, true);
  return dir;
}

after(() => {
  for (const c of copies) rmSync(c, { recursive: true, force: true });
  for (const [run, f] of handedOut) check(run, f);
});
