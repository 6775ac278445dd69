/**
 * Counts beyond the machine or the data: threads, loader workers, a step's memory, weights, steps
 * per run, counts past the parsers' ceiling, predict's --top and visualize's grids. Each is one
 * line, exit 2, within seconds and before the run folder exists — or, for --top beyond the
 * classes, all of them with a note.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateSynthetic } from '../../src/data/index.js';
import { ilsvrc, TINY } from '../../test/cli/run.js';
import { assertOk, assertRefused, cli, HANG_MS, type Case, type Context } from './harness.js';

/** A training run refused in one line before its folder exists; returns the time it took. */
async function refusedRun(ctx: Context, args: string[], env: NodeJS.ProcessEnv, ...patterns: RegExp[]): Promise<string> {
  const out = join(ctx.dir, 'run');
  const r = await ilsvrc([...TINY, '--max-steps', '1', ...args, '--out', out], env, HANG_MS);
  const line = assertRefused(r, ...patterns);
  assert.equal(existsSync(out), false, 'the refused run made its folder');
  assert.ok(r.seconds < 30, `refused after ${r.seconds.toFixed(1)} s`);
  return `exit 2 after ${r.seconds.toFixed(1)} s: ${line.slice(0, 90)}`;
}

export const BOUNDS: Case[] = [
  {
    name: 'threads-beyond-cores',
    what: 'train --threads 1000000',
    run: (ctx) => refusedRun(ctx, ['--threads', '1000000'], {}, /Expected at most \d+ for --threads \(4 × the \d+ cores?/),
  },
  {
    name: 'workers-beyond-cores',
    what: 'train --workers 10000',
    run: (ctx) => refusedRun(ctx, ['--workers', '10000'], {}, /Expected at most \d+ for --workers/),
  },
  {
    name: 'step-beyond-memory',
    what: 'train --batch-size 1000000, and 1024 at 224 px in 2 GB',
    async run(ctx) {
      await refusedRun(ctx, ['--batch-size', '1000000', '--input-size', '224'], {}, /for --batch-size 1000000 .* the data has 1920/);
      return refusedRun(
        ctx,
        ['--batch-size', '1024', '--input-size', '224'],
        { ILSVRC_MEMORY_BUDGET: '2G' },
        /training step of --batch-size 1024 at/,
      );
    },
  },
  {
    name: 'weights-beyond-memory',
    what: 'train --width 1000, export --classes 1000000',
    async run(ctx) {
      const a = await refusedRun(ctx, ['--width', '1000'], {}, /the weights and optimizer state of vgg-a at --width 1000/, /memory budget/);
      const onnx = join(ctx.dir, 'wide.onnx');
      const r = await ilsvrc(['export', 'vgg-a', '--classes', '1000000', '-o', onnx], { ILSVRC_MEMORY_BUDGET: '8G' }, HANG_MS);
      assertRefused(r, /the weights of vgg-a/, /memory budget/);
      assert.equal(existsSync(onnx), false);
      return a;
    },
  },
  {
    name: 'steps-per-run-beyond-memory',
    what: 'train --steps-per-run 1000 in 30 MB',
    run: (ctx) =>
      refusedRun(ctx, ['--steps-per-run', '1000'], { ILSVRC_MEMORY_BUDGET: '30M' }, /--steps-per-run 1000 \(120 stacked batches/),
  },
  {
    name: 'counts-past-ceiling',
    what: '--classes 1e8, --width 2000, --top 2e6, --channel 0-1e9',
    async run(ctx) {
      await refusedRun(ctx, ['--classes', '100000000'], {}, /Expected a positive integer up to 1048576 for --classes/);
      await refusedRun(ctx, ['--width', '2000'], {}, /Expected a positive number up to 1024 for --width/);
      // Flags are parsed before any file is read.
      assertRefused(await cli(['predict', 'absent.safetensors', 'absent.png', '--top', '2000000']), /up to 1048576 for --top/);
      const channels = await cli(['visualize', 'deconvnet', 'absent.safetensors', 'absent.png', '--channel', '0-1000000000']);
      assertRefused(channels, /for --channel/, /at most 1048576/);
      return 'four refusals by the parsers';
    },
  },
  {
    name: 'top-and-grids-beyond-the-model',
    what: 'predict --top 1e6 on 8 classes, occlusion --stride 1 in 10 MB',
    async run(ctx) {
      const out = join(ctx.dir, 'model');
      assertOk(await cli([...TINY, '--max-steps', '1', '--out', out]));
      const ckpt = join(out, 'last.safetensors');
      const syn = await generateSynthetic();
      const image = join(syn.dir, 'val', 'ring', readdirSync(join(syn.dir, 'val', 'ring'))[0]!);
      const p = await cli(['predict', ckpt, image, '--top', '1000000']);
      assertOk(p);
      assert.match(p.stderr, /note: --top 1000000 is more than the model's 8 classes: showing 8/);
      const png = join(ctx.dir, 'o.png');
      const grid = ['visualize', 'occlusion', ckpt, image, '--size', '1', '--stride', '1', '--batch', '1', '-o', png];
      const o = await ilsvrc(grid, { ILSVRC_MEMORY_BUDGET: '10M' }, HANG_MS);
      const line = assertRefused(o, /--stride 1 with --size 1/, /memory budget/);
      assert.equal(existsSync(png), false);
      return `--top clamped to 8 with a note; ${line.slice(0, 80)}`;
    },
  },
];
