/**
 * The first round of fault cases: a full disk at three moments, kill -9 at random moments (seeded),
 * two runs on one folder, a stale lock, a diverging run, resumes mid-epoch and at an epoch end,
 * hostile model files and decompression bombs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { LOCK_FILE } from '../../src/util/lock.js';
import { writeCorpus } from '../../test/cli/hostile.js';
import { MAIN, TINY } from '../../test/cli/run.js';
import { writeIdx } from '../../src/data/idx.js';
import { jpegBomb, writeIdxBomb } from '../../test/data/bombs.js';
import { assertOk, assertRefused, cli, type Case, type Context, sameWeights, tagSteps } from './harness.js';

// ---------------------------------------------------------------------------------------------
// A full disk: a tmpfs with little room left, sized from a real checkpoint of the TINY model.

function mounted(dir: string, bytes: number): { release(): void } {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(bytes / 4096) * 4096}`, 'tmpfs', dir]);
  return { release: () => execFileSync('umount', ['-l', dir]) };
}

let checkpointBytes: Promise<number> | undefined;
/** The size of one TINY checkpoint, from a real run (once per process). */
function tinyCheckpointBytes(dir: string): Promise<number> {
  checkpointBytes ??= (async () => {
    const out = join(dir, 'size-probe');
    assertOk(await cli([...TINY, '--max-steps', '3', '--out', out]));
    return statSync(join(out, 'last.safetensors')).size;
  })();
  return checkpointBytes;
}

/** Runs TINY with --out on a tmpfs with `room` bytes; `check` looks at the folder before it is unmounted. */
async function fullDisk(
  ctx: Context,
  room: (ckpt: number) => number,
  args: string[],
  check: (line: string, out: string) => void = () => {},
): Promise<{ line: string; seconds: number }> {
  const ckpt = await tinyCheckpointBytes(ctx.dir);
  const disk = join(ctx.dir, 'disk');
  const m = mounted(disk, room(ckpt));
  try {
    const out = join(disk, 'run');
    const r = await cli([...TINY, ...args, '--out', out]);
    const line = assertRefused(r, /no space left on device \(ENOSPC\)/);
    if (existsSync(join(out, 'last.safetensors'))) loadCheckpoint(join(out, 'last.safetensors')); // intact: it loads
    check(line, out);
    return { line, seconds: r.seconds };
  } finally {
    m.release();
  }
}

export const ROUND_ONE: Case[] = [
  {
    name: 'full-disk-at-start',
    what: 'ENOSPC before the first step',
    needsMount: true,
    async run(ctx) {
      const { line, seconds } = await fullDisk(ctx, () => 4096, ['--max-steps', '30']);
      assert.match(line, /no checkpoint had been written|cannot write/);
      return `exit 2 after ${seconds.toFixed(1)} s`;
    },
  },
  {
    name: 'full-disk-after-checkpoint',
    what: 'ENOSPC mid-epoch, after a checkpoint',
    needsMount: true,
    async run(ctx) {
      // Room for one checkpoint and a half: the one at step 30 fits, the next cannot.
      const { line, seconds } = await fullDisk(
        ctx,
        (c) => 1.5 * c + 64 * 1024,
        ['--max-steps', '120', '--checkpoint-every', '30'],
        (l, out) => {
          assert.match(l, /last\.safetensors.*\(step 30\) is intact/);
          assert.equal(loadCheckpoint(join(out, 'last.safetensors')).meta.step, 30);
        },
      );
      return `exit 2 after ${seconds.toFixed(1)} s, step 30 kept: ${line}`;
    },
  },
  {
    name: 'full-disk-at-epoch-end',
    what: 'ENOSPC writing metrics, plots, checkpoints',
    needsMount: true,
    async run(ctx) {
      const { seconds } = await fullDisk(ctx, (c) => 1.2 * c, ['--max-steps', '140']);
      return `exit 2 after ${seconds.toFixed(1)} s`;
    },
  },
  {
    name: 'kill-9-then-resume',
    what: 'kill -9 at random moments, then --resume',
    async run(ctx) {
      const args = [...TINY, '--max-steps', '40', '--checkpoint-every', '4'];
      const straight = join(ctx.dir, 'straight');
      assertOk(await cli([...args, '--out', straight]));
      const kills = ctx.quick ? 1 : 4;
      const notes: string[] = [];
      for (let i = 0; i < kills; i++) {
        const out = join(ctx.dir, `killed-${i}`);
        // A random moment after the first checkpoint exists: mid-step, mid-write or mid-validation.
        const delay = ctx.rng.int(1500);
        const child = spawn(process.execPath, [MAIN, ...args, '--out', out], { stdio: 'ignore' });
        const exited = new Promise<void>((res) => child.on('exit', () => res()));
        while (!existsSync(join(out, 'last.safetensors')) && child.exitCode === null) await new Promise((res) => setTimeout(res, 5));
        await new Promise((res) => setTimeout(res, delay));
        child.kill('SIGKILL');
        await exited;
        const r = await cli(['train', '--resume', '--out', out, '--threads', '1']);
        assertOk(r);
        sameWeights(join(straight, 'last.safetensors'), join(out, 'last.safetensors'));
        assert.deepEqual(
          readdirSync(out).filter((n) => n.endsWith('.tmp') || n.endsWith('.pending') || n === LOCK_FILE),
          [],
          'no temp file or lock left',
        );
        const steps = tagSteps(out, 'train/loss');
        assert.equal(new Set(steps).size, steps.length, 'TensorBoard steps do not repeat');
        notes.push(`+${delay} ms`);
      }
      return `killed at ${notes.join(', ')}; resumed bit-identical`;
    },
  },
  {
    name: 'two-runs-one-folder',
    what: 'two runs started together on one --out',
    async run(ctx) {
      const out = join(ctx.dir, 'shared');
      const [a, b] = await Promise.all([
        cli([...TINY, '--max-steps', '12', '--out', out]),
        cli([...TINY, '--max-steps', '12', '--out', out]),
      ]);
      const [ok, refused] = a.code === 0 ? [a, b] : [b, a];
      assertOk(ok);
      assertRefused(refused, /Expected no other run in --out .* but process \d+/);
      return 'one ran, one refused';
    },
  },
  {
    name: 'resume-a-live-run',
    what: '--resume against a run still going',
    async run(ctx) {
      const out = join(ctx.dir, 'live');
      const child = spawn(process.execPath, [MAIN, ...TINY, '--epochs', '50', '--checkpoint-every', '3', '--out', out], {
        stdio: 'ignore',
      });
      const exited = new Promise<void>((res) => child.on('exit', () => res()));
      try {
        while (!existsSync(join(out, 'last.safetensors'))) await new Promise((res) => setTimeout(res, 10));
        assertRefused(await cli(['train', '--resume', '--out', out]), new RegExp(`process ${child.pid}`));
        assertRefused(await cli(['train', '--resume', join(out, 'last.safetensors')]), new RegExp(`process ${child.pid}`));
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      return 'refused, naming the live process';
    },
  },
  {
    name: 'stale-lock-and-temps',
    what: 'a dead run left its lock and a torn temp file',
    async run(ctx) {
      const out = join(ctx.dir, 'stale');
      mkdirSync(out, { recursive: true });
      const dead = 2 ** 22 + 12345; // above Linux's pid_max default: no such process
      writeFileSync(
        join(out, LOCK_FILE),
        JSON.stringify({ pid: dead, host: (await import('node:os')).hostname(), command: 'ilsvrc train', since: 'then' }),
      );
      const temp = `.last.safetensors.${dead}.abcdefgh.tmp`;
      writeFileSync(join(out, temp), 'torn');
      assertOk(await cli([...TINY, '--max-steps', '3', '--out', out]));
      assert.ok(!existsSync(join(out, temp)), 'the dead process temp file is removed');
      assert.ok(!existsSync(join(out, LOCK_FILE)), 'the lock is released at the end');
      return 'lock taken over, temp removed';
    },
  },
  {
    name: 'diverging-run',
    what: 'NaN loss: the named checkpoint must be good',
    async run(ctx) {
      const out = join(ctx.dir, 'nan');
      // Warmup delays the blow-up past a few checkpoints (measured: NaN at step 46, checkpoints every 5).
      const r = await cli([
        ...TINY,
        '--lr',
        '3',
        '--warmup-steps',
        '100',
        '--optimizer',
        'sgd',
        '--momentum',
        '0.9',
        '--max-steps',
        '120',
        '--checkpoint-every',
        '5',
        '--out',
        out,
      ]);
      const line = assertRefused(r, /Expected a finite (training loss|validation loss)|Expected finite weights/);
      const named = /the last good checkpoint is (\S+) \(step (\d+)\)/.exec(line);
      if (!named) {
        assert.match(line, /no checkpoint had been written/);
        assert.ok(!existsSync(join(out, 'last.safetensors')));
        return 'diverged before the first checkpoint; none written';
      }
      const file = named[1]!;
      assert.ok(existsSync(file), `${file} exists`);
      assert.equal(loadCheckpoint(file).meta.step, Number(named[2]));
      const e = await cli(['evaluate', file, '--json']);
      assertOk(e);
      const j = JSON.parse(e.stdout.trim().split('\n').pop() ?? '{}') as { top1: number; loss: number };
      assert.ok(Number.isFinite(j.top1) && Number.isFinite(j.loss), `finite evaluation of ${file}: ${e.stdout}`);
      assert.deepEqual(
        readdirSync(out).filter((n) => n.endsWith('.pending')),
        [],
        'no unverified checkpoint left',
      );
      return `named step ${named[2]}, which evaluates finite`;
    },
  },
  {
    name: 'evaluate-nan-weights',
    what: 'a checkpoint holding NaN',
    async run(ctx) {
      const out = join(ctx.dir, 'poison');
      assertOk(await cli([...TINY, '--max-steps', '3', '--out', out]));
      const file = join(out, 'last.safetensors');
      const bytes = readFileSync(file);
      // The header is 8 bytes of length then JSON; poison the last float of the data.
      bytes.writeFloatLE(NaN, bytes.length - 4);
      const bad = join(out, 'nan.safetensors');
      writeFileSync(bad, bytes);
      assertRefused(await cli(['evaluate', bad]), /finite/, /nan\.safetensors/);
      return 'exit 2, named';
    },
  },
  {
    name: 'resume-mid-epoch-records',
    what: 'metrics of a resumed epoch cover the whole epoch',
    async run(ctx) {
      const straight = join(ctx.dir, 'whole');
      assertOk(await cli([...TINY, '--epochs', '1', '--out', straight]));
      const out = join(ctx.dir, 'split');
      assertOk(await cli([...TINY, '--epochs', '1', '--max-steps', '60', '--out', out]));
      assertOk(await cli(['train', '--resume', '--out', out, '--max-steps', '0']));
      const rows = (d: string) =>
        readFileSync(join(d, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, number>);
      const a = rows(straight).find((r) => r['epoch'] === 1);
      const b = rows(out).find((r) => r['epoch'] === 1); // after the stop's own record at epoch 0.5
      assert.ok(a && b);
      // The loss sums are over the same steps with the same weights: equal to the last digit.
      assert.equal(b['train_loss'], a['train_loss'], 'train loss over the whole epoch');
      assert.equal(b['train_top1'], a['train_top1']);
      assert.ok((b['img_per_s'] ?? 0) > 0 && Number.isFinite(b['img_per_s']));
      const steps = tagSteps(out, 'train/loss');
      assert.equal(new Set(steps).size, steps.length, 'TensorBoard steps do not repeat');
      assert.deepEqual(
        steps,
        Array.from({ length: b['step'] ?? 0 }, (_, i) => i + 1),
        'one train/loss per step of the epoch, in order',
      );
      return 'same epoch record as an uninterrupted run';
    },
  },
  {
    name: 'resume-at-epoch-end',
    what: 'resume from a checkpoint written at an epoch end',
    async run(ctx) {
      const out = join(ctx.dir, 'boundary');
      // 1 920 training images at batch 16: the epoch ends at step 120, and so does --max-steps.
      assertOk(await cli([...TINY, '--epochs', '1', '--max-steps', '120', '--out', out]));
      const r = await cli(['train', '--resume', '--out', out, '--epochs', '2', '--max-steps', '125']);
      assertOk(r);
      assert.doesNotMatch(r.stderr, /NaN| 0 img\/s/);
      return 'no NaN, no 0 img/s';
    },
  },
  {
    name: 'hostile-files',
    what: 'a corpus of broken, foreign and lying files',
    async run() {
      const c = await writeCorpus();
      try {
        // Every bad model file, with a good image; every bad image, with a good model.
        const models = [...Object.values(c.files), ...Object.values(c.ckpts), ...Object.values(c.onnxs)];
        const runs: [string[], string][] = [
          ...models.map((m): [string[], string] => [['predict', m, c.image], m]),
          ...Object.values(c.images).map((i): [string[], string] => [['predict', c.ckpt, i], i]),
          ...Object.values(c.classesJson).map((d): [string[], string] => [['predict', join(d, 'tiny.onnx'), c.image], d]),
        ];
        // Two at a time: each is a process of its own.
        for (let i = 0; i < runs.length; i += 2) {
          await Promise.all(
            runs.slice(i, i + 2).map(async ([args, file]) => {
              const r = await cli(args);
              const line = assertRefused(r);
              assert.ok(line.includes(file) || line.includes(file.split('/').pop()!), `names ${file}: ${line}`);
            }),
          );
        }
        return `${runs.length} files, each one line naming it, exit 2`;
      } finally {
        rmSync(c.dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'decompression-bombs',
    what: 'a gzip IDX bomb and a 16000² JPEG header',
    async run(ctx) {
      const idx = join(ctx.dir, 'idx');
      mkdirSync(idx, { recursive: true });
      await writeIdxBomb(join(idx, 'train-images-idx3-ubyte.gz'));
      // Its companions are honest, so that the bomb itself is what is refused (every header is read first).
      await writeIdx(join(idx, 'train-labels-idx1-ubyte'), { dims: [1], data: Uint8Array.of(0) });
      await writeIdx(join(idx, 't10k-images-idx3-ubyte'), { dims: [1, 28, 28], data: new Uint8Array(784) });
      await writeIdx(join(idx, 't10k-labels-idx1-ubyte'), { dims: [1], data: Uint8Array.of(0) });
      const r = await cli(['train', 'vgg-a', '--data', `idx:${idx}`, '--out', join(ctx.dir, 'idx-run')]);
      assertRefused(r, /train-images-idx3-ubyte\.gz/);
      assert.ok(r.seconds < 30, `refused after ${r.seconds} s`);
      // An image folder with one bomb among good images: the bomb is skipped and named, the run goes on.
      const { bomb, small } = await jpegBomb();
      for (const cls of ['a', 'b']) {
        for (const split of ['train', 'val']) {
          mkdirSync(join(ctx.dir, 'img', split, cls), { recursive: true });
          for (let k = 0; k < 4; k++) writeFileSync(join(ctx.dir, 'img', split, cls, `${k}.jpg`), small);
        }
      }
      writeFileSync(join(ctx.dir, 'img', 'train', 'a', 'bomb.jpg'), bomb);
      const t = await cli([
        'train',
        'vgg-a',
        '--data',
        join(ctx.dir, 'img'),
        '--width',
        '0.0625',
        '--input-size',
        '32',
        '--batch-size',
        '4',
        '--epochs',
        '1',
        '--threads',
        '1',
        '--out',
        join(ctx.dir, 'img-run'),
        '--json',
      ]);
      assertOk(t);
      assert.match(t.stderr, /skipped unreadable images: 1 train, 0 val \(.*bomb\.jpg/);
      return `IDX bomb refused in ${r.seconds.toFixed(1)} s; JPEG bomb skipped and named`;
    },
  },
];
