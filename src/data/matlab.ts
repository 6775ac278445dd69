/**
 * MATLAB 5 MAT-files (MATLAB's `save -v7`, its default, and SciPy's `savemat`), the part of the
 * format that holds data: numeric, logical and char arrays, cells and structs, each variable
 * compressed or not, either byte order. The ILSVRC devkit's `meta.mat` is one compressed struct array.
 *
 * Nothing in the file is trusted: every length is checked against the bytes that hold it, every
 * count of elements against the bytes left to describe them, nesting is bounded, and compressed
 * data is inflated within what is left of a limit on the whole file's inflated size; a malformed
 * file is one line naming it and the byte where it goes wrong.
 */
import { UsageError } from '../util/errors.js';
import { inflateBounded } from '../util/read.js';

export type MatValue =
  | { type: 'numeric'; dims: number[]; data: Float64Array }
  /** The characters in MATLAB's column-major order: a row (1×N) reads as the string. */
  | { type: 'char'; dims: number[]; text: string }
  | { type: 'cell'; dims: number[]; cells: MatValue[] }
  | { type: 'struct'; dims: number[]; fields: string[]; elements: Map<string, MatValue>[] };

/** Data element types (the "mi" types of MathWorks' MAT-file format reference). */
const MI = { int8: 1, uint8: 2, int32: 5, uint32: 6, matrix: 14, compressed: 15, utf8: 16, utf16: 17, utf32: 18 } as const;
/** Element sizes of the numeric types; 7 is single, 9 double, 12 and 13 are 64-bit integers. */
const NUMERIC: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
/** Array classes ("mx" classes). */
const MX = { cell: 1, struct: 2, char: 4 } as const;
const MX_NAMES: Record<number, string> = { 3: 'an object', 5: 'a sparse matrix', 16: 'a function handle', 17: 'an opaque object' };
const COMPLEX = 0x0800;
/** Cells in structs in cells: real files nest a few levels; more is a hostile file. */
const MAX_DEPTH = 32;

/** A window on the file's bytes, or on one compressed element's inflated bytes. */
class Cursor {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
    /** Where these bytes are: "FILE" or "the compressed element at byte N of FILE". */
    readonly where: string,
    public pos = 0,
    readonly end = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }
  bad(at: number, what: string, found: string): UsageError {
    return new UsageError(`Expected ${what} at byte ${at} of ${this.where} but found ${found}`);
  }
}

interface Element {
  type: number;
  /** The element's data: [start, start + size). */
  start: number;
  size: number;
}

/** The next data element's tag (the 4-byte small form too), checked against the bytes left; moves past it and its padding. */
function element(c: Cursor): Element {
  const at = c.pos;
  if (c.end - at < 8) throw c.bad(at, 'an 8-byte data element tag', `${c.end - at} bytes left`);
  const first = c.u32(at);
  if (first >>> 16 !== 0) {
    // Small element: type and size share the first 4 bytes, the data (up to 4 bytes) the next 4.
    const size = first >>> 16;
    if (size > 4) throw c.bad(at, 'a small data element of at most 4 bytes', `${size} bytes`);
    c.pos = at + 8;
    return { type: first & 0xffff, start: at + 4, size };
  }
  const size = c.u32(at + 4);
  if (size > c.end - at - 8) throw c.bad(at, `a data element within the ${c.end - at - 8} bytes left`, `one of ${size} bytes`);
  // Compressed elements are not padded; the others are, to 8 bytes (a file may end without the last padding).
  const padded = first === MI.compressed ? size : Math.ceil(size / 8) * 8;
  c.pos = Math.min(c.end, at + 8 + padded);
  return { type: first, start: at + 8, size };
}

/** The values of a numeric data element, as doubles. */
function numbers(c: Cursor, e: Element, at: number): Float64Array {
  const size = NUMERIC[e.type];
  if (size === undefined || e.size % size !== 0) throw c.bad(at, 'numeric data', `element type ${e.type} of ${e.size} bytes`);
  const n = e.size / size;
  const out = new Float64Array(n);
  const v = c.view;
  for (let i = 0, p = e.start; i < n; i++, p += size) {
    switch (e.type) {
      case 1:
        out[i] = v.getInt8(p);
        break;
      case 2:
        out[i] = v.getUint8(p);
        break;
      case 3:
        out[i] = v.getInt16(p, c.le);
        break;
      case 4:
        out[i] = v.getUint16(p, c.le);
        break;
      case 5:
        out[i] = v.getInt32(p, c.le);
        break;
      case 6:
        out[i] = v.getUint32(p, c.le);
        break;
      case 7:
        out[i] = v.getFloat32(p, c.le);
        break;
      case 9:
        out[i] = v.getFloat64(p, c.le);
        break;
      case 12:
        out[i] = Number(v.getBigInt64(p, c.le));
        break;
      default:
        out[i] = Number(v.getBigUint64(p, c.le));
    }
  }
  return out;
}

/** Characters: UTF-8 and 8-bit elements as UTF-8 (ASCII either way), 16-bit ones as UTF-16 code units, 32-bit as code points. */
function chars(c: Cursor, e: Element, at: number): string {
  const b = c.bytes.subarray(e.start, e.start + e.size);
  if (e.type === MI.utf8 || e.type === MI.uint8 || e.type === MI.int8) return Buffer.from(b).toString('utf8');
  const n = e.type === 4 || e.type === MI.utf16 ? 2 : e.type === MI.utf32 || e.type === MI.uint32 || e.type === MI.int32 ? 4 : 0;
  if (n === 0 || e.size % n !== 0) throw c.bad(at, 'character data', `element type ${e.type} of ${e.size} bytes`);
  if (n === 2) {
    const u = Buffer.from(b);
    if (!c.le) u.swap16();
    return u.toString('utf16le');
  }
  const out: string[] = [];
  for (let p = e.start; p < e.start + e.size; p += 4) out.push(String.fromCodePoint(Math.min(c.view.getUint32(p, c.le), 0x10ffff)));
  return out.join('');
}

/** The sub-elements of a matrix are read from its own bytes only. */
function within(c: Cursor, e: Element): Cursor {
  return new Cursor(c.bytes, c.le, c.where, e.start, e.start + e.size);
}

function expectType(c: Cursor, e: Element, types: readonly number[], at: number, what: string): void {
  if (!types.includes(e.type)) throw c.bad(at, what, `element type ${e.type}`);
}

/** A miMATRIX element's array: flags, dimensions, name, then the data its class holds. */
function matrix(c: Cursor, e: Element, depth: number): { name: string; value: MatValue } {
  if (e.type !== MI.matrix) throw c.bad(e.start - 8, 'an array (miMATRIX element)', `element type ${e.type}`);
  if (depth > MAX_DEPTH) throw c.bad(e.start - 8, `arrays nested at most ${MAX_DEPTH} deep`, 'deeper nesting');
  // An empty element stands for an empty array (MATLAB writes empty cells so).
  if (e.size === 0) return { name: '', value: { type: 'numeric', dims: [0, 0], data: new Float64Array(0) } };
  const m = within(c, e);
  let at = m.pos;
  const flags = element(m);
  if (flags.type !== MI.uint32 || flags.size !== 8)
    throw m.bad(at, 'array flags (2 uint32)', `element type ${flags.type} of ${flags.size} bytes`);
  const word = m.u32(flags.start);
  const cls = word & 0xff;
  at = m.pos;
  const dimsEl = element(m);
  expectType(m, dimsEl, [MI.int32], at, 'array dimensions (int32)');
  const dims = Array.from(numbers(m, dimsEl, at));
  if (dims.length < 2 || dims.some((d) => d < 0)) throw m.bad(at, 'two or more dimensions of 0 or more', `[${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  at = m.pos;
  const nameEl = element(m);
  expectType(m, nameEl, [MI.int8, MI.uint8, MI.utf8], at, 'an array name (int8)');
  const name = chars(m, nameEl, at);
  at = m.pos;
  const bad = MX_NAMES[cls];
  if (bad !== undefined) throw m.bad(at, 'a numeric, char, cell or struct array', `${bad} (${name || 'unnamed'})`);
  if (word & COMPLEX) throw m.bad(at, 'real values', `the complex array ${name || '(unnamed)'}`);
  // Each cell or struct field needs an 8-byte tag at least: a count beyond that is a lie.
  const left = m.end - m.pos;
  if (cls === MX.cell) {
    if (count * 8 > left) throw m.bad(at, `the ${count} cells of [${dims.join(', ')}] within ${left} bytes`, 'too few bytes');
    const cells: MatValue[] = [];
    for (let i = 0; i < count; i++) cells.push(matrix(m, element(m), depth + 1).value);
    return { name, value: { type: 'cell', dims, cells } };
  }
  if (cls === MX.struct) return { name, value: struct(m, dims, count, depth) };
  const dataEl = element(m);
  if (cls === MX.char) {
    const text = chars(m, dataEl, at);
    if (text.length !== count && !(dataEl.type === MI.utf8 && text.length < count))
      throw m.bad(at, `${count} characters for [${dims.join(', ')}]`, `${text.length}`);
    return { name, value: { type: 'char', dims, text } };
  }
  if (cls < 6 || cls > 15) throw m.bad(at, 'a known array class', `class ${cls}`);
  const data = numbers(m, dataEl, at);
  if (data.length !== count) throw m.bad(at, `${count} values for [${dims.join(', ')}]`, `${data.length}`);
  return { name, value: { type: 'numeric', dims, data } };
}

function struct(m: Cursor, dims: number[], count: number, depth: number): MatValue {
  let at = m.pos;
  const lenEl = element(m);
  expectType(m, lenEl, [MI.int32], at, 'the field name length (int32)');
  const len = numbers(m, lenEl, at)[0] ?? 0;
  if (len < 1 || len > 4096) throw m.bad(at, 'a field name length from 1 to 4096', String(len));
  at = m.pos;
  const namesEl = element(m);
  expectType(m, namesEl, [MI.int8, MI.uint8], at, 'field names (int8)');
  if (namesEl.size % len !== 0) throw m.bad(at, `field names of ${len} bytes each`, `${namesEl.size} bytes`);
  const fields: string[] = [];
  for (let p = namesEl.start; p < namesEl.start + namesEl.size; p += len) {
    const raw = m.bytes.subarray(p, p + len);
    const z = raw.indexOf(0);
    fields.push(Buffer.from(raw.subarray(0, z < 0 ? len : z)).toString('latin1'));
  }
  const twice = fields.find((f, k) => fields.indexOf(f) < k);
  if (twice !== undefined) throw m.bad(at, 'each field name once', `${twice} twice`);
  const left = m.end - m.pos;
  if (count * fields.length * 8 > left)
    throw m.bad(at, `${count} × ${fields.length} fields of [${dims.join(', ')}] within ${left} bytes`, 'too few bytes');
  const elements: Map<string, MatValue>[] = [];
  for (let i = 0; i < count; i++) {
    const el = new Map<string, MatValue>();
    for (const f of fields) el.set(f, matrix(m, element(m), depth + 1).value);
    elements.push(el);
  }
  return { type: 'struct', dims, fields, elements };
}

/** The variables of a MAT-file, by name; `limit` bounds the bytes all its compressed variables inflate to. */
export function readMat(bytes: Uint8Array, file: string, limit: number): Map<string, MatValue> {
  const head = Buffer.from(bytes.subarray(0, 128)).toString('latin1');
  if (head.startsWith('MATLAB 7.3 MAT-file'))
    throw new UsageError(`Expected a MATLAB 5 MAT-file in ${file} but it is a MATLAB 7.3 (HDF5) file; save it with -v7`);
  if (!head.startsWith('MATLAB 5.0 MAT-file') || bytes.length < 128) {
    throw new UsageError(
      `Expected a MATLAB 5 MAT-file (a header starting 'MATLAB 5.0 MAT-file') in ${file} but it starts ${JSON.stringify(head.slice(0, 20))}`,
    );
  }
  const endian = head.slice(126, 128);
  if (endian !== 'IM' && endian !== 'MI')
    throw new UsageError(`Expected the byte-order mark 'IM' or 'MI' at byte 126 of ${file} but found ${JSON.stringify(endian)}`);
  const c = new Cursor(bytes, endian === 'IM', file, 128);
  const out = new Map<string, MatValue>();
  let inflated = 0;
  while (c.pos < c.end) {
    const at = c.pos;
    const e = element(c);
    let v: { name: string; value: MatValue };
    if (e.type === MI.compressed) {
      const data = inflateBounded(c.bytes.subarray(e.start, e.start + e.size), file, limit - inflated, 'the MAT-file');
      inflated += data.length;
      const z = new Cursor(data, c.le, `the compressed element at byte ${at} of ${file}`);
      v = matrix(z, element(z), 0);
    } else if (e.type === MI.matrix) {
      v = matrix(c, e, 0);
    } else continue; // other top-level elements carry no variable
    if (out.has(v.name)) throw c.bad(at, 'each variable once', `${v.name} twice`);
    out.set(v.name, v.value);
  }
  return out;
}
