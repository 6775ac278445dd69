/** The CSV writer against two independent readers: a strict RFC 4180 parser and Python's csv module. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { csvChunks, csvField, csvLine, writeCsv } from '../../src/util/csv.js';
import { parseCsvStrict, readCsvPython } from './csv-read.js';

/** Names a class folder (or a user) may well hold. */
export const AWKWARD = ['a,b', 'say "hi"', 'two\nlines', 'cr\rhere', '"', ',', '', ' padded ', 'plain', 'ünï©ødé, "both"\r\n'];

test('csvField quotes a comma, a quote, CR or LF and doubles the quotes; numbers and empties as they are', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\r'), '"cr\r"');
  assert.equal(csvField(0.25), '0.25');
  assert.equal(csvField(NaN), 'NaN');
  assert.equal(csvField(null), '');
  assert.equal(csvField(undefined), '');
  assert.equal(csvLine(['x', 1, null]), 'x,1,\n');
});

test('writeCsv round-trips awkward names through Python’s csv module and a strict RFC 4180 parser', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-csv-'));
  try {
    const file = join(dir, 'names.csv');
    const rows = AWKWARD.map((name, i) => [name, i, name.length]);
    writeCsv(file, ['name', 'index', 'length'], rows);
    const want = [['name', 'index', 'length'], ...rows.map((r) => r.map(String))];
    assert.deepEqual(parseCsvStrict(readFileSync(file, 'utf8')), want);
    const py = readCsvPython(file);
    if (py === undefined) t.skip('python3 is not installed: only the strict parser read the file');
    else assert.deepEqual(py, want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('csvChunks cuts a large table into chunks of about the size asked, the same text as one piece', () => {
  const records = Array.from({ length: 5000 }, (_, i) => [`class ${i}, "${i % 7}"`, i]);
  const chunks = [...csvChunks(records, 4096)];
  assert.ok(chunks.length > 10, `${chunks.length} chunks`);
  assert.ok(chunks.every((c) => c.length < 4096 + 100));
  const text = Buffer.concat(chunks).toString('utf8');
  assert.equal(text, records.map(csvLine).join(''));
  assert.equal(parseCsvStrict(text).length, 5000);
});
