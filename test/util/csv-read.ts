/**
 * Two independent CSV readers for tests of what we write: a strict RFC 4180 parser (a quote in an
 * unquoted field, text after a closing quote, an unterminated quote or a ragged row is an error),
 * and Python's csv module, the reader most users will meet.
 */
import { spawnSync } from 'node:child_process';

export function parseCsvStrict(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new Error(`unterminated quoted field in row ${rows.length + 1}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
        throw new Error(`text after a closing quote in row ${rows.length + 1}: ${JSON.stringify(text.slice(i, i + 20))}`);
      }
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        if (text[i] === '"') throw new Error(`a quote in an unquoted field in row ${rows.length + 1}`);
        field += text[i++];
      }
      if (text[i] === '\r' && text[i + 1] !== '\n') throw new Error(`a bare CR in an unquoted field in row ${rows.length + 1}`);
    }
    row.push(field);
    if (text[i] === ',') {
      i++;
      if (i === n) row.push('');
      continue;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    rows.push(row);
    row = [];
  }
  if (row.length > 0) rows.push(row);
  const width = rows[0]?.length ?? 0;
  rows.forEach((r, k) => {
    if (r.length !== width) throw new Error(`row ${k + 1} has ${r.length} fields, the header ${width}`);
  });
  return rows;
}

/** The rows as Python's csv.reader reads the file, or undefined where there is no python3. */
export function readCsvPython(file: string): string[][] | undefined {
  const read = "import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))";
  const r = spawnSync('python3', ['-c', read, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (r.status !== 0) throw new Error(`python3's csv reader failed on ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[][];
}
