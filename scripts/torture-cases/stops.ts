/**
 * A stop (SIGTERM, as `docker stop` sends; Ctrl-C is SIGINT, handled alike) in the middle of every
 * long loop: validation inside training, evaluate, predict over many files, visualize top. Each must
 * be acted on within a second or two (docker escalates to SIGKILL after 10 s), write what it
 * promised, and exit: training 0 with last.safetensors that --resume continues; evaluate and
 * visualize 130 with one line and nothing written; predict 130 after printing what it did.
 * The data is an IDX set with a large validation split (at 32 px a pass over it takes 20–40 s on
 * one thread), so that the stop lands mid-loop.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeIdx } from '../../src/data/index.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { start, type Started } from '../../test/cli/run.js';
import { assertOk, cli, type Case, sameWeights } from './harness.js';

/** Exit within this long of the signal. */
const PROMPT_S = 2;
/** Plain progress lines five times a second, so a case can tell that a loop has begun. */
const FREQUENT_PROGRESS = { ILSVRC_PROGRESS_SECONDS: '0.2' };
/** Validation images: a pass takes 20–40 s at one thread. */
const BIG_VAL = 40_000;

/** TINY's model and threads. */
const TINY_MODEL = ['--width', '0.0625', '--input-size', '32', '--init', 'kaiming', '--batch-size', '16', '--threads', '1'];

/** TINY's model on an IDX folder (1 channel, 10 classes). */
function tiny(data: string): string[] {
  return ['train', 'vgg-a', '--data', `idx:${data}`, ...TINY_MODEL, '--seed', '5', '--steps-per-run', '2'];
}

/** An IDX folder: `train` training images and `val` validation images of seeded noise, labels k mod 10. */
async function writeIdxSet(dir: string, train: number, val: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  for (const [prefix, n] of [
    ['train', train],
    ['t10k', val],
  ] as const) {
    // The same training images in every set (seeded by the split, not its size), so runs on sets
    // that differ only in validation learn the same weights.
    let x = prefix === 'train' ? 1 : 2;
    const data = new Uint8Array(n * 784);
    for (let i = 0; i < data.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      data[i] = x >>> 24;
    }
    await writeIdx(join(dir, `${prefix}-images-idx3-ubyte`), { dims: [n, 28, 28], data });
    await writeIdx(join(dir, `${prefix}-labels-idx1-ubyte`), { dims: [n], data: Uint8Array.from({ length: n }, (_, k) => k % 10) });
  }
  return dir;
}

interface StopData {
  /** 64 training images, BIG_VAL validation images. */
  big: string;
  /** The same training images, 200 validation images. */
  small: string;
  /** A checkpoint of the tiny model on them. */
  ckpt: string;
}

let shared: Promise<StopData> | undefined;
/** The sets and a checkpoint, made once per process. */
function stopData(dir: string): Promise<StopData> {
  shared ??= (async () => {
    const big = await writeIdxSet(join(dir, 'idx-big'), 64, BIG_VAL);
    const small = await writeIdxSet(join(dir, 'idx-small'), 64, 200);
    const out = join(dir, 'trained');
    assertOk(await cli([...tiny(small), '--max-steps', '2', '--out', out]));
    return { big, small, ckpt: join(out, 'last.safetensors') };
  })();
  return shared;
}

/**
 * Signals `p` `after` ms once `ready` is on stderr (or after `ms` anyway); without `ready`, `ms`
 * after the start: off a terminal nothing tells when a loop has begun, and each takes 10 s or more.
 */
async function stopAt(p: Started, ms: number, ready?: RegExp, after = 0): Promise<{ code: number | null; seconds: number; seen: boolean }> {
  const seen = ready ? await p.waitFor(ready, ms) : await new Promise<boolean>((r) => setTimeout(() => r(false), ms));
  await new Promise((r) => setTimeout(r, after));
  const r = await p.signal('SIGTERM');
  assert.ok(r.seconds <= PROMPT_S, `exited ${r.seconds.toFixed(1)} s after SIGTERM (at most ${PROMPT_S} s): ${p.stderr().slice(-400)}`);
  return { ...r, seen };
}

/** Exit 130 and a last line on stderr that matches. */
function assertStopped(p: Started, code: number | null, line: RegExp): string {
  assert.equal(code, 130, `exit 130 expected, got ${code}: ${p.stderr().slice(-400)}`);
  const last = p.stderr().trim().split('\n').pop() ?? '';
  assert.match(last, line);
  assert.doesNotMatch(p.stderr(), /internal error|^\s+at /m);
  return last;
}

export const STOPS: Case[] = [
  {
    name: 'stop-during-validation',
    what: 'SIGTERM while training validates a large set',
    async run(ctx) {
      const d = await stopData(ctx.dir);
      const out = join(ctx.dir, 'stopped');
      const p = start([...tiny(d.big), '--epochs', '1', '--out', out]);
      // The epoch's bar ends where validation begins; the stop lands a second into it.
      const r = await stopAt(p, 15_000, /^epoch 1\/1 \[#+\] 64\/64 100%/m, 1000);
      assert.ok(r.seen, `no end of the epoch's steps on stderr: ${p.stderr().slice(-400)}`);
      assert.equal(r.code, 0, p.stderr().slice(-600));
      assert.match(p.stderr(), /validation of epoch 1 stopped; --resume validates it again/);
      assert.match(p.stderr(), /^interrupted after/m);
      const at = loadCheckpoint(join(out, 'last.safetensors')).meta;
      assert.deepEqual([at.epoch, at.batchInEpoch, at.step], [0, 4, 4], 'the checkpoint is at the end of the epoch, not yet validated');
      assert.ok(!existsSync(join(out, 'metrics.jsonl')), 'no record of a validation that did not finish');
      const stopped = join(ctx.dir, 'stopped.safetensors');
      copyFileSync(join(out, 'last.safetensors'), stopped);
      // --resume validates the epoch again (here on the small validation split, to keep it short),
      // records it once, and the weights are the stopped checkpoint's: validation changes none.
      const resumed = await cli(['train', '--resume', out, '--data', `idx:${d.small}`, '--threads', '1']);
      assertOk(resumed);
      assert.match(resumed.stderr, /^epoch 1\/1: train loss [\d.]+ /m);
      const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
      assert.equal(rows.length, 1, 'one record of epoch 1');
      const row = JSON.parse(rows[0]!) as { epoch: number; step: number; train_loss: number };
      assert.deepEqual([row.epoch, row.step], [1, 4]);
      assert.ok(Number.isFinite(row.train_loss), 'the record covers the epoch trained before the stop');
      sameWeights(stopped, join(out, 'last.safetensors'));
      const after = loadCheckpoint(join(out, 'last.safetensors')).meta;
      assert.deepEqual([after.epoch, after.batchInEpoch], [1, 0]);
      if (!ctx.quick) {
        // And an uninterrupted run of the same epoch ends with the same weights and record.
        const straight = join(ctx.dir, 'straight');
        assertOk(await cli([...tiny(d.small), '--epochs', '1', '--out', straight]));
        sameWeights(join(straight, 'last.safetensors'), join(out, 'last.safetensors'));
        const a = JSON.parse(readFileSync(join(straight, 'metrics.jsonl'), 'utf8')) as Record<string, number>;
        const b = row as unknown as Record<string, number>;
        for (const k of ['train_loss', 'train_top1', 'val_loss', 'val_top1', 'val_top5']) assert.equal(b[k], a[k], k);
      }
      return `exit 0 ${r.seconds.toFixed(2)} s after SIGTERM mid-validation; --resume validated epoch 1`;
    },
  },
  {
    name: 'stop-while-loading',
    what: 'SIGTERM while training waits for slow images',
    async run(ctx) {
      // An ImageFolder of large noisy PNGs (links to one file): a batch of 16 takes seconds to
      // decode, far longer than the tiny model's step, so the trainer is waiting for the loader.
      const root = join(ctx.dir, 'slow');
      mkdirSync(root, { recursive: true });
      const side = 2000;
      const file = join(ctx.dir, 'noise.png');
      let x = 3;
      const noise = Buffer.alloc(side * side, 0).map(() => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
      await sharp(noise, { raw: { width: side, height: side, channels: 1 } })
        .png()
        .toFile(file);
      for (const c of ['a', 'b']) {
        mkdirSync(join(root, c), { recursive: true });
        for (let i = 0; i < 60; i++) symlinkSync(file, join(root, c, `${i}.png`));
      }
      const out = join(ctx.dir, 'run');
      const p = start(['train', 'vgg-a', '--data', root, ...TINY_MODEL, '--steps-per-run', '2', '--out', out]);
      const r = await stopAt(p, 15_000, /^training vgg-a/m, 3000);
      assert.equal(r.code, 0, p.stderr().slice(-600));
      const at = loadCheckpoint(join(out, 'last.safetensors')).meta;
      return `exit 0 ${r.seconds.toFixed(2)} s after SIGTERM, checkpoint at step ${at.step}`;
    },
  },
  {
    name: 'stop-during-evaluate',
    what: 'SIGTERM while evaluate scores a large set',
    async run(ctx) {
      const d = await stopData(ctx.dir);
      const out = join(ctx.dir, 'eval');
      const p = start(['evaluate', d.ckpt, '--data', `idx:${d.big}`, '--threads', '1', '--out', out], FREQUENT_PROGRESS);
      // The signal lands once the loop is under way (its first progress line), however fast the machine.
      const r = await stopAt(p, 15_000, /^evaluate center \[[#.]*\] [1-9]\d*\//m);
      assert.ok(r.seen, `no progress line before the signal: ${p.stderr().slice(-400)}`);
      assertStopped(p, r.code, /^ilsvrc: evaluate stopped by SIGTERM after \d+ images; nothing written$/);
      assert.deepEqual(existsSync(out) ? readdirSync(out) : [], [], 'nothing written');
      return `exit 130 ${r.seconds.toFixed(2)} s after SIGTERM`;
    },
  },
  {
    name: 'stop-during-predict',
    what: 'SIGTERM while predict reads many files',
    async run(ctx) {
      const d = await stopData(ctx.dir);
      const dir = join(ctx.dir, 'images');
      mkdirSync(dir, { recursive: true });
      // Large noisy images (tens of ms each to decode and resize), many names for one file. Few
      // names: some 20 KB of file arguments crash predict (SIGSEGV, also without any stop).
      const n = 300;
      const side = 1000;
      const first = join(dir, '0.png');
      let x = 1;
      const noise = Buffer.alloc(side * side, 0).map(() => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
      await sharp(noise, { raw: { width: side, height: side, channels: 1 } })
        .png()
        .toFile(first);
      const files = [first];
      for (let i = 1; i < n; i++) {
        files.push(join(dir, `${i}.png`));
        symlinkSync(first, files[i]!);
      }
      try {
        const p = start(['predict', d.ckpt, ...files], FREQUENT_PROGRESS);
        const r = await stopAt(p, 15_000, /^predict \[[#.]*\] [1-9]\d*\//m);
        assert.ok(r.seen, `no progress line before the signal: ${p.stderr().slice(-400)}`);
        const line = assertStopped(p, r.code, /^ilsvrc: predict stopped by SIGTERM after \d+ of 300 images$/);
        const done = Number(/after (\d+) of/.exec(line)![1]);
        assert.ok(done < n, `stopped mid-way: ${done}`);
        assert.equal(
          p
            .stdout()
            .split('\n')
            .filter((l) => l.startsWith(dir)).length,
          done,
          'every image done is printed',
        );
        return `exit 130 ${r.seconds.toFixed(2)} s after SIGTERM, ${done} of ${n} printed`;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'stop-during-visualize-top',
    what: 'SIGTERM while visualize top searches a large set',
    async run(ctx) {
      const d = await stopData(ctx.dir);
      const png = join(ctx.dir, 'top.png');
      const p = start(
        ['visualize', 'top', d.ckpt, '--layer', 'conv3_1', '--data', `idx:${d.big}`, '--limit', '0', '--threads', '1', '-o', png],
        FREQUENT_PROGRESS,
      );
      const r = await stopAt(p, 15_000, /^top conv3_1 \[[#.]*\] [1-9]\d*\//m);
      assert.ok(r.seen, `no progress line before the signal: ${p.stderr().slice(-400)}`);
      assertStopped(p, r.code, /^ilsvrc: visualize top stopped by SIGTERM after \d+ of 40000 images; nothing written$/);
      assert.ok(!existsSync(png), 'no picture of a partial search');
      return `exit 130 ${r.seconds.toFixed(2)} s after SIGTERM`;
    },
  },
];
