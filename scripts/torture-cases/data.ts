/**
 * Data that does not fit the memory budget, with headers that tell the truth (an IDX file of 2 M
 * images, a CIFAR batch of 123 MB, a 300 MB image in a tar), and data that contradicts itself (an
 * image labelled twice, a synset tar with no images).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ilsvrc } from '../../test/cli/run.js';
import { writeCifarBomb, writeHonestIdxBomb, writeTar } from '../../test/data/bombs.js';
import { jpeg, WNIDS, writeLayout } from '../../test/data/ilsvrc-layout.js';
import { assertOk, assertRefused, type Case, cli, HANG_MS } from './harness.js';

const SHORT = ['train', 'vgg-a', '--width', '0.0625', '--input-size', '32', '--init', 'kaiming', '--batch-size', '4', '--threads', '1'];

/** A short run on `data` into DIR/run under a memory budget of `budget`. */
function withBudget(dir: string, data: string, budget: string, more: string[] = []): ReturnType<typeof ilsvrc> {
  return ilsvrc([...SHORT, ...more, '--data', data, '--out', join(dir, 'run')], { ILSVRC_MEMORY_BUDGET: budget }, HANG_MS);
}

export const DATA: Case[] = [
  {
    name: 'honest-idx-bomb',
    what: '2 M images of 28×28 declared and present (1.5 GB in 1.5 MB of gzip)',
    async run(ctx) {
      const file = await writeHonestIdxBomb(join(ctx.dir, 'idx'));
      const r = await withBudget(ctx.dir, `idx:${join(ctx.dir, 'idx')}`, '1G');
      assertRefused(r, new RegExp(`${file}.*1\\.5 GB`), /memory budget \(1\.0 GB/);
      assert.ok(r.seconds < 10, `refused after ${r.seconds} s`);
      return `refused in ${r.seconds.toFixed(1)} s`;
    },
  },
  {
    name: 'cifar-over-budget',
    what: 'a 123 MB CIFAR batch (sparse) under a 64 MB budget',
    async run(ctx) {
      const file = await writeCifarBomb(join(ctx.dir, 'cifar'), 40_000);
      const r = await withBudget(ctx.dir, `cifar:${join(ctx.dir, 'cifar')}`, '64M');
      assertRefused(r, new RegExp(`the CIFAR records of ${file}`), /memory budget \(64\.0 MB/);
      return `refused in ${r.seconds.toFixed(1)} s`;
    },
  },
  {
    name: 'tar-member-over-budget',
    what: 'a 300 MB image inside a synset tar',
    async run(ctx) {
      const L = await writeLayout(join(ctx.dir, 'layout'));
      const members = await Promise.all([0, 1, 2].map(async (j) => ({ name: `${WNIDS[1]}_10${j}.JPEG`, body: await jpeg(1, j) })));
      writeTar(join(L.tars, 'train', `${WNIDS[1]}.tar`), [...members, { name: `${WNIDS[1]}_999.JPEG`, size: 300 << 20 }]);
      const r = await withBudget(ctx.dir, `ilsvrc:${L.tars}`, '64M', ['--epochs', '1']);
      assertOk(r);
      assert.match(r.stderr, /_999\.JPEG: file too large: 314572800 bytes, more than the 4\.0 MB one image may take of the memory budget/);
      return 'skipped unread and named; the run went on';
    },
  },
  {
    name: 'duplicate-val-labels',
    what: 'an image labelled twice in LOC_val_solution.csv',
    async run(ctx) {
      const L = await writeLayout(join(ctx.dir, 'layout'));
      const csv = join(L.tars, 'LOC_val_solution.csv');
      writeFileSync(csv, readFileSync(csv, 'utf8') + `ILSVRC2012_val_00000001,${WNIDS[2]} 1 2 3 4\n`);
      const r = await cli([...SHORT, '--max-steps', '1', '--data', `ilsvrc:${L.tars}`, '--out', join(ctx.dir, 'run')]);
      return assertRefused(r, new RegExp(`${csv} but ILSVRC2012_val_00000001 is "${WNIDS[0]}" on line 2 and "${WNIDS[2]}" on line 8`));
    },
  },
  {
    name: 'empty-synset-tar',
    what: 'a synset tar with no images inside ILSVRC2012_img_train.tar',
    async run(ctx) {
      const L = await writeLayout(join(ctx.dir, 'layout'));
      const train = join(L.outer, 'ILSVRC2012_img_train.tar');
      const inner = (w: string) => ({ name: `${w}.tar`, body: readFileSync(join(L.tars, 'train', `${w}.tar`)) });
      const empty = join(ctx.dir, 'empty.tar');
      execFileSync('tar', ['-cf', empty, '-T', '/dev/null']);
      writeTar(train, [inner(WNIDS[0]), { name: `${WNIDS[1]}.tar`, body: readFileSync(empty) }, inner(WNIDS[2])]);
      const r = await cli([...SHORT, '--max-steps', '1', '--data', `ilsvrc:${L.outer}`, '--out', join(ctx.dir, 'run')]);
      return assertRefused(r, new RegExp(`synset ${WNIDS[1]} in ${train} but its member ${WNIDS[1]}\\.tar holds none`));
    },
  },
];
