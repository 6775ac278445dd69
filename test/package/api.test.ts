// evaluate() and visualize() of the package root are `ilsvrc evaluate` and `ilsvrc visualize`: on the
// same checkpoint they give what the commands print with --json and write the same files, and a
// caller's mistake is a UsageError naming the option, as the command's is a one-line refusal.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluate, generateSynthetic, UsageError, visualize } from '../../src/index.js';
import { assertUsageError, ilsvrc, TINY } from '../cli/run.js';

const work = mkdtempSync(join(tmpdir(), 'ilsvrc-api-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ckpt = join(work, 'run', 'last.safetensors');
let image = '';

/** A JSON round trip: what --json would print of a value. */
const json = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

before(async () => {
  const r = await ilsvrc([...TINY, '--max-steps', '3', '--out', join(work, 'run')]);
  assert.equal(r.code, 0, r.stderr.slice(-800));
  const shapes = await generateSynthetic({ dir: join(work, 'shapes'), classes: 4, perClass: 4, size: 32 });
  const circles = join(shapes.dir, 'val', 'circle');
  image = join(circles, readdirSync(circles).sort()[0]!);
});

describe('evaluate() is ilsvrc evaluate', () => {
  it('the same numbers as --json and the same per-class table', async () => {
    const cli = await ilsvrc(['evaluate', ckpt, '--json', '--threads', '1', '--out', join(work, 'cli')]);
    assert.equal(cli.code, 0, cli.stderr.slice(-800));
    const printed = JSON.parse(cli.stdout) as Record<string, unknown>;
    let seen = 0;
    const api = await evaluate(ckpt, { threads: 1, out: join(work, 'api'), onProgress: (done, total) => (seen = done / total) });
    assert.equal(seen, 1, 'progress reaches the whole split');
    const paths = ['per_class_csv', 'confusion', 'confusion_png'] as const;
    const { img_per_s: _a, ...ours } = json(api) as Record<string, unknown>;
    const { img_per_s: _b, ...theirs } = printed;
    for (const k of paths) {
      assert.equal(ours[k], join(work, 'api', (theirs[k] as string).slice(join(work, 'cli').length + 1)));
      delete ours[k];
      delete theirs[k];
    }
    assert.deepEqual(ours, theirs);
    assert.ok(api.n > 0 && api.top1 >= 0 && api.top1 <= 1);
    assert.equal(readFileSync(api.per_class_csv, 'utf8'), readFileSync(printed['per_class_csv'] as string, 'utf8'));
  });

  it("a caller's mistake is a UsageError naming the option, as the command's refusal names the flag", async () => {
    await assert.rejects(
      evaluate(ckpt, { crop: 'dense', scales: [8], out: join(work, 'bad') }),
      (e: Error) => e instanceof UsageError && /--scales/.test(e.message) && /8/.test(e.message),
    );
    assertUsageError(await ilsvrc(['evaluate', ckpt, '--crop', 'dense', '--scales', '8', '--out', join(work, 'bad')]), '--scales');
    await assert.rejects(
      evaluate(join(work, 'none.safetensors')),
      (e: Error) => e instanceof UsageError && /none\.safetensors/.test(e.message),
    );
    // Counts from code, which no flag parser has read, are held to the flags' rule.
    for (const [o, flag] of [
      [{ batchSize: 0 }, '--batch-size'],
      [{ scales: [256.5] }, '--scales'],
      [{ threads: -1 }, '--threads'],
    ] as const)
      await assert.rejects(
        evaluate(ckpt, { ...o, out: join(work, 'bad') }),
        (e: Error) => e instanceof UsageError && e.message.includes(flag),
      );
  });
});

describe('visualize() is ilsvrc visualize', () => {
  it('filters: the same PNG and numbers as the command', async () => {
    const cli = await ilsvrc(['visualize', 'filters', ckpt, '--json', '--out', join(work, 'cli-filters.png')]);
    assert.equal(cli.code, 0, cli.stderr.slice(-800));
    const { png, ...printed } = JSON.parse(cli.stdout) as { png: string };
    const v = await visualize('filters', ckpt, { out: join(work, 'api-filters.png') });
    assert.equal(v.file, join(work, 'api-filters.png'));
    assert.deepEqual(readFileSync(v.file), readFileSync(png));
    assert.deepEqual(v.png, readFileSync(png));
    assert.deepEqual(json(v.details), printed);
  });

  it('occlusion of an image: the same numbers, the command’s default name in an out folder', async () => {
    const cli = await ilsvrc(['visualize', 'occlusion', ckpt, image, '--json', '--threads', '1', '--class', 'square', '--out', work]);
    assert.equal(cli.code, 0, cli.stderr.slice(-800));
    const { png, ...printed } = JSON.parse(cli.stdout) as { png: string };
    const out = join(work, 'api-occlusion');
    const v = await visualize('occlusion', ckpt, { image, threads: 1, class: 'square', out: `${out}/` });
    assert.equal(v.file, join(out, png.slice(work.length + 1)));
    assert.equal(v.details.class.name, 'square');
    assert.deepEqual(json(v.details), printed);
  });

  it("a caller's mistake is a UsageError naming the option", async () => {
    await assert.rejects(
      visualize('occlusion', ckpt, { image, class: 'hexagon', out: join(work, 'x.png') }),
      (e: Error) => e instanceof UsageError && /--class/.test(e.message) && /hexagon/.test(e.message),
    );
    await assert.rejects(
      visualize('filters', ckpt, { maxFilters: 1.5, out: join(work, 'x.png') }),
      (e: Error) => e instanceof UsageError && /--max-filters/.test(e.message) && /1\.5/.test(e.message),
    );
    await assert.rejects(
      visualize('top', ckpt, { layer: 'conv1_1', batch: 0, out: join(work, 'x.png') }),
      (e: Error) => e instanceof UsageError && /--batch/.test(e.message),
    );
    await assert.rejects(
      visualize('activations', ckpt, { image, layer: 'conv9_9', out: join(work, 'x.png') }),
      (e: Error) => e instanceof UsageError && /conv9_9/.test(e.message),
    );
  });
});
