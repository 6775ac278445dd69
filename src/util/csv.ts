/**
 * The one CSV writer (RFC 4180): a field holding a comma, a quote, CR or LF is quoted, its quotes
 * doubled, so a class name like `say "hi", twice` stays one field that any reader splits back.
 * Lines end in LF, which every common reader accepts (RFC 4180's CRLF only matters inside fields).
 */
import { writeFileAtomic } from './fsx.js';

export type CsvValue = string | number | null | undefined;

/** One field: numbers as JavaScript prints them, null and undefined empty. */
export function csvField(v: CsvValue): string {
  if (typeof v === 'number') return String(v);
  const s = v ?? '';
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One record, its line end included. */
export function csvLine(fields: readonly CsvValue[]): string {
  return fields.map(csvField).join(',') + '\n';
}

/** Records as UTF-8 chunks of about `chunkBytes`, made as they are read: a file of any size never sits in memory whole. */
export function* csvChunks(records: Iterable<readonly CsvValue[]>, chunkBytes = 1 << 20): Generator<Uint8Array> {
  const enc = new TextEncoder();
  let buf = '';
  for (const r of records) {
    buf += csvLine(r);
    if (buf.length >= chunkBytes) {
      yield enc.encode(buf);
      buf = '';
    }
  }
  if (buf.length > 0) yield enc.encode(buf);
}

/** Writes `header` and `records` to `path` atomically (the old file or the whole new one, never a torn mix). */
export function writeCsv(path: string, header: readonly string[], records: Iterable<readonly CsvValue[]>): void {
  writeFileAtomic(path, csvChunks(withHeader(header, records)));
}

function* withHeader(header: readonly string[], records: Iterable<readonly CsvValue[]>): Generator<readonly CsvValue[]> {
  yield header;
  yield* records;
}
