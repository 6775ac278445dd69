/**
 * Many classes and awkward class names: a 10 000-class evaluation must finish within a bound,
 * print a report a person reads and write a confusion file that grows with the images, not with
 * classes²; class names holding a comma, a quote or a newline must come back whole from every CSV
 * we write (confusion.csv, per_class.csv, and a training run's metrics.csv).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { colourModel, writeColourFolder } from '../../test/cli/colour-classes.js';
import { TINY } from '../../test/cli/run.js';
import { parseCsvStrict, readCsvPython } from '../../test/util/csv-read.js';
import { assertOk, cli, type Case } from './harness.js';

/** Loose, for a shared machine (the quick form took 63 s at load 32 on 2 cores); work in classes² takes hours. */
const SCALE_BOUND_S = 100;

/** The rows of a CSV file as a strict RFC 4180 parser reads them, and Python's csv module too where there is python3. */
function readCsv(file: string): { rows: string[][]; python: boolean } {
  const rows = parseCsvStrict(readFileSync(file, 'utf8'));
  const py = readCsvPython(file);
  if (py !== undefined) assert.deepEqual(py, rows, `Python's csv module reads ${file} as the strict parser does`);
  return { rows, python: py !== undefined };
}

export const SCALE: Case[] = [
  {
    name: 'evaluate-10k-classes',
    what: '10 000 classes: bounded time, report and confusion file',
    async run(ctx) {
      const C = 10_000;
      // Two images a class in the full form: 50 000 PNG files take the loader past the hang limit on
      // 2 cores, which measures decoding, not classes (scripts/bench-evaluate times 50 000 IDX images).
      const per = ctx.quick ? 1 : 2;
      const names = Array.from({ length: C }, (_, c) => `c${String(c).padStart(5, '0')}`);
      // Every 1000th class's first image painted as the next class: ten known mistakes.
      writeColourFolder(join(ctx.dir, 'data'), names, per, 4, (c, j) => (c % 1000 === 0 && j === 0 ? c + 1 : c));
      writeFileSync(join(ctx.dir, 'm.onnx'), colourModel(C, 4));
      const out = join(ctx.dir, 'out');
      const r = await cli(['evaluate', join(ctx.dir, 'm.onnx'), '--data', join(ctx.dir, 'data'), '--out', out, '--batch-size', '64']);
      assertOk(r);
      assert.ok(r.seconds < SCALE_BOUND_S, `${r.seconds.toFixed(1)} s for ${C * per} images of ${C} classes (bound ${SCALE_BOUND_S} s)`);
      const lines = r.stdout.trimEnd().split('\n');
      assert.ok(lines.length <= 60, `${lines.length} lines of report`);
      assert.match(lines[0]!, new RegExp(`\\(val, ${C * per} images, center crop\\): top-1 error ${((100 * 10) / (C * per)).toFixed(2)}%`));
      assert.match(r.stdout, /no confusion\.png: 10000 classes/);
      const file = join(out, 'confusion.csv');
      const bytes = statSync(file).size;
      // Sparse: a line per (true, predicted) pair that occurs, at most one per image.
      assert.ok(bytes < 64 * (C * per + 1), `confusion.csv is ${bytes} bytes`);
      const { rows } = readCsv(file);
      // The diagonal of every class that got an image right, and the ten mistakes.
      assert.equal(rows.length, 1 + C - (per === 1 ? 10 : 0) + 10);
      assert.equal(readCsv(join(out, 'per_class.csv')).rows.length, 1 + C);
      return `${C * per} images in ${r.seconds.toFixed(1)} s, ${lines.length} lines, confusion.csv ${(bytes / 1024).toFixed(0)} KiB`;
    },
  },
  {
    name: 'csv-awkward-names',
    what: "class names 'a,b', 'say \"hi\"', 'two\\nlines' in every CSV",
    async run(ctx) {
      const names = ['a,b', 'say "hi"', 'two\nlines', 'plain'].sort();
      const data = join(ctx.dir, 'data');
      writeColourFolder(data, names, 2, 4);
      writeFileSync(join(ctx.dir, 'm.onnx'), colourModel(names.length, 4));
      const out = join(ctx.dir, 'eval');
      assertOk(await cli(['evaluate', join(ctx.dir, 'm.onnx'), '--data', data, '--out', out]));
      const matrix = readCsv(join(out, 'confusion.csv'));
      assert.deepEqual(matrix.rows[0], ['true\\predicted', ...names]);
      assert.deepEqual(
        matrix.rows.slice(1).map((r) => r[0]),
        names,
      );
      assert.deepEqual(
        readCsv(join(out, 'per_class.csv'))
          .rows.slice(1)
          .map((r) => r[1]),
        names,
      );
      assertOk(await cli(['evaluate', join(ctx.dir, 'm.onnx'), '--data', data, '--out', out, '--confusion', 'sparse']));
      assert.deepEqual(
        readCsv(join(out, 'confusion.csv'))
          .rows.slice(1)
          .map((r) => r.slice(0, 2)),
        names.map((n) => [n, n]),
      );

      // A TINY training run on the same folder: its metrics.csv parses, and its checkpoint's evaluation names the classes.
      const run = join(ctx.dir, 'run');
      assertOk(await cli([...TINY, '--data', data, '--batch-size', '4', '--epochs', '1', '--out', run]));
      const metrics = readCsv(join(run, 'metrics.csv'));
      assert.equal(metrics.rows[0]?.[0], 'epoch');
      assert.ok(metrics.rows.length >= 2, 'a row per epoch');
      const ev = join(ctx.dir, 'eval-ckpt');
      assertOk(await cli(['evaluate', join(run, 'last.safetensors'), '--data', data, '--out', ev]));
      assert.deepEqual(
        readCsv(join(ev, 'per_class.csv'))
          .rows.slice(1)
          .map((r) => r[1]),
        names,
      );
      return `confusion.csv, per_class.csv, metrics.csv parse${matrix.python ? ' (strict and Python)' : ' (strict; no python3)'}`;
    },
  },
];
