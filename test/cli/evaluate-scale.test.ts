/**
 * `ilsvrc evaluate` at many classes, as a user runs it: a report a person reads, the per-class
 * table and the confusion in files it names, no heatmap nobody can read; and class names that
 * hold a comma, a quote or a newline come back whole from every CSV it writes. The model is the
 * nearest-colour classifier of colour-classes.ts, so every count is known.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCsvStrict, readCsvPython } from '../util/csv-read.js';
import { colourModel, writeColourFolder } from './colour-classes.js';
import { assertUsageError, ilsvrc } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-eval-scale-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Both readers agree on the file; returns its rows (Python's check is skipped, visibly, without python3). */
function readCsv(file: string, t: { skip(message: string): void }): string[][] {
  const rows = parseCsvStrict(readFileSync(file, 'utf8'));
  const py = readCsvPython(file);
  if (py === undefined) t.skip('python3 is not installed: only the strict parser read the files');
  else assert.deepEqual(py, rows, `Python's csv module reads ${file} as the strict parser does`);
  return rows;
}

test('evaluate at 300 classes: a summary under 60 lines, per_class.csv and a sparse confusion.csv named, no heatmap', async (t) => {
  const C = 300;
  const names = Array.from({ length: C }, (_, c) => `k${String(c).padStart(3, '0')}`);
  const dir = join(root, 'c300');
  // Mistakes by design: 0–11 each lose one image to c+100, 200 loses both to 201, 201–203 one each to 7.
  const paint = (c: number, j: number): number => (c < 12 && j === 1 ? c + 100 : c === 200 ? 201 : c >= 201 && c <= 203 && j === 0 ? 7 : c);
  const painted = writeColourFolder(join(dir, 'data'), names, 2, 4, paint);
  writeFileSync(join(dir, 'm.onnx'), colourModel(C, 4));
  const out = join(dir, 'out');
  const run = (...more: string[]) => ilsvrc(['evaluate', join(dir, 'm.onnx'), '--data', join(dir, 'data'), '--out', out, ...more]);
  const stale = join(out, 'confusion.png');
  const first = await run('--json');
  assert.equal(first.code, 0, first.stderr);
  writeFileSync(stale, 'a heatmap from an earlier evaluation');

  const r = await run();
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.ok(lines.length <= 60, `${lines.length} lines:\n${r.stdout}`);
  assert.match(lines[0]!, /\(val, 600 images, center crop\): top-1 error 2\.83%/);
  assert.match(r.stdout, /300 classes, 300 with images/);
  assert.match(r.stdout, /worst 10:\n {4}k200 +0\.00% +0\/2\n {4}k000 +50\.00% +1\/2\n/);
  assert.match(r.stdout, /best 10:\n {4}k012 +100\.00% +2\/2\n/);
  assert.match(r.stdout, /most confused \(true → predicted: images\):\n {4}k200 → k201: 2\n {4}k000 → k100: 1\n/);
  assert.ok(r.stdout.includes(`per-class table: ${join(out, 'per_class.csv')}`), r.stdout);
  const note = `confusion (nonzero cells as true,predicted,count): ${join(out, 'confusion.csv')}; no confusion.png: 300 classes`;
  assert.ok(r.stdout.includes(note), r.stdout);
  assert.ok(!existsSync(stale), 'a stale confusion.png is removed, not left to contradict the new numbers');

  // The sparse confusion: exactly the painted (true, predicted) pairs, counted.
  const want = new Map<string, number>();
  painted.forEach((ks, c) => ks.forEach((k) => want.set(`${names[c]},${names[k]}`, (want.get(`${names[c]},${names[k]}`) ?? 0) + 1)));
  const conf = readCsv(join(out, 'confusion.csv'), t);
  assert.deepEqual(conf[0], ['true', 'predicted', 'count']);
  assert.deepEqual(new Map(conf.slice(1).map(([a, b, n]) => [`${a},${b}`, Number(n)])), want);

  const per = readCsv(join(out, 'per_class.csv'), t);
  const columns = ['index', 'class', 'images', 'top1_correct', 'top1_accuracy', 'top5_correct', 'top5_accuracy'];
  columns.push('most_mistaken_for', 'mistaken_count');
  assert.deepEqual(per[0], columns);
  assert.equal(per.length, C + 1);
  assert.deepEqual(per[1 + 200]!.slice(0, 5), ['200', 'k200', '2', '0', '0']);
  assert.deepEqual(per[1 + 200]!.slice(7), ['k201', '2']);
  assert.deepEqual(per[1 + 12]!.slice(0, 5).concat(per[1 + 12]!.slice(7)), ['12', 'k012', '2', '2', '1', '', '']);

  type Out = Record<string, unknown> & { per_class: Record<string, number>; worst: { class: string }[]; most_confused: unknown[] };
  const j = JSON.parse(first.stdout) as Out;
  assert.equal(j['top1'], (600 - 12 - 2 - 3) / 600);
  assert.equal(Object.keys(j.per_class).length, C);
  assert.equal(j.per_class['k200'], 0);
  assert.equal(j.worst[0]?.class, 'k200');
  assert.deepEqual(j.most_confused[0], { true: 'k200', predicted: 'k201', count: 2 });
  const files = [j['confusion'], j['confusion_form'], j['confusion_png'], j['per_class_csv']];
  assert.deepEqual(files, [join(out, 'confusion.csv'), 'sparse', null, join(out, 'per_class.csv')]);

  // On request, the whole matrix: a row per true class, a column per predicted class.
  const full = await run('--confusion', 'full', '--json');
  assert.equal(full.code, 0, full.stderr);
  const m = readCsv(join(out, 'confusion.csv'), t);
  assertUsageError(await run('--confusion', 'dense'), 'Expected one of auto, full, sparse for --confusion but received "dense"');
  assert.equal(m.length, C + 1);
  assert.deepEqual(m[0], ['true\\predicted', ...names]);
  assert.equal(m[1 + 200]![1 + 201], '2');
  assert.equal(m[1 + 7]![1 + 7], '1');
  assert.equal(
    m.slice(1).reduce((a, row) => a + row.slice(1).reduce((b, v) => b + Number(v), 0), 0),
    600,
  );
});

test('class names with a comma, a quote or a newline: whole in confusion.csv and per_class.csv, one line on screen', async (t) => {
  const names = ['a,b', 'say "hi"', 'two\nlines', 'plain'].sort();
  const dir = join(root, 'names');
  // One image of 'plain' painted as 'a,b': a confusion between the two names hardest to quote.
  const painted = writeColourFolder(join(dir, 'data'), names, 2, 4, (c, j) => (names[c] === 'plain' && j === 1 ? names.indexOf('a,b') : c));
  writeFileSync(join(dir, 'm.onnx'), colourModel(names.length, 4));
  const out = join(dir, 'out');
  const run = (...more: string[]) => ilsvrc(['evaluate', join(dir, 'm.onnx'), '--data', join(dir, 'data'), '--out', out, ...more]);

  const r = await run();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\n {2}"two\\nlines" +100\.00% +2\/2\n/);
  assert.match(r.stdout, /\n {4}plain → a,b: 1\n/);
  assert.ok(existsSync(join(out, 'confusion.png')));

  const matrix = readCsv(join(out, 'confusion.csv'), t);
  assert.deepEqual(matrix[0], ['true\\predicted', ...names]);
  assert.deepEqual(
    matrix.slice(1),
    names.map((n, c) => [n, ...names.map((_, k) => String(painted[c]!.filter((x) => x === k).length))]),
  );
  const per = readCsv(join(out, 'per_class.csv'), t);
  assert.deepEqual(
    per.slice(1).map((row) => row[1]),
    names,
  );
  assert.deepEqual(per[1 + names.indexOf('plain')]!.slice(7), ['a,b', '1']);

  const sparse = await run('--confusion', 'sparse');
  assert.equal(sparse.code, 0, sparse.stderr);
  const cells = readCsv(join(out, 'confusion.csv'), t);
  assert.deepEqual(cells[0], ['true', 'predicted', 'count']);
  assert.deepEqual(cells.slice(1), [
    ['a,b', 'a,b', '2'],
    ['plain', 'a,b', '1'],
    ['plain', 'plain', '1'],
    ['say "hi"', 'say "hi"', '2'],
    ['two\nlines', 'two\nlines', '2'],
  ]);
});
