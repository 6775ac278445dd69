/**
 * TensorBoard event files, written without TensorFlow: TFRecord framing around serialized
 * `Event` protos (tensorflow/core/util/event.proto, framework/summary.proto). Only what ilsvrc
 * logs is encoded: the file version and scalar summaries.
 */
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pb from 'protobufjs/minimal.js';
import { UsageError } from '../util/errors.js';
import { ensureDir, withPath, writeFileAtomic } from '../util/fsx.js';

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli), as TFRecord uses it

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    // 0x82F63B78 is the Castagnoli polynomial 0x1EDC6F41, bit-reversed.
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    c = (CRC32C_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return ~c >>> 0;
}

/** TFRecord stores a rotated, offset CRC so that a CRC of data containing CRCs stays strong. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length, masked CRC of the length, data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Event protos

/** Protobuf field numbers and wire types used below. */
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const SUMMARY = { value: 1 } as const;
const VALUE = { tag: 1, simpleValue: 2 } as const;
const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

const key = (field: number, wire: number): number => ((field << 3) | wire) >>> 0;

interface Scalar {
  tag: string;
  value: number;
}

interface TbEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Scalar[];
}

export function encodeEvent(event: TbEvent): Uint8Array {
  const w = pb.Writer.create();
  w.uint32(key(EVENT.wallTime, WIRE.fixed64)).double(event.wallTime);
  if (event.step !== 0) w.uint32(key(EVENT.step, WIRE.varint)).int64(event.step);
  if (event.fileVersion !== undefined) {
    w.uint32(key(EVENT.fileVersion, WIRE.bytes)).string(event.fileVersion);
  }
  if (event.scalars.length > 0) {
    w.uint32(key(EVENT.summary, WIRE.bytes)).fork();
    for (const s of event.scalars) {
      w.uint32(key(SUMMARY.value, WIRE.bytes)).fork();
      w.uint32(key(VALUE.tag, WIRE.bytes)).string(s.tag);
      w.uint32(key(VALUE.simpleValue, WIRE.fixed32)).float(s.value);
      w.ldelim();
    }
    w.ldelim();
  }
  return w.finish();
}

function toNumber(v: pb.Long | number): number {
  return typeof v === 'number' ? v : v.high * 4294967296 + (v.low >>> 0);
}

export function decodeEvent(bytes: Uint8Array): TbEvent {
  const r = pb.Reader.create(bytes);
  const event: TbEvent = { wallTime: 0, step: 0, scalars: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === EVENT.wallTime && (tag & 7) === WIRE.fixed64) event.wallTime = r.double();
    else if (field === EVENT.step && (tag & 7) === WIRE.varint) event.step = toNumber(r.int64());
    else if (field === EVENT.fileVersion && (tag & 7) === WIRE.bytes) event.fileVersion = r.string();
    else if (field === EVENT.summary && (tag & 7) === WIRE.bytes) decodeSummary(r.bytes(), event.scalars);
    else r.skipType(tag & 7);
  }
  return event;
}

/** Appends the summary's simple values; images, histograms and tensors are skipped. */
function decodeSummary(bytes: Uint8Array, into: Scalar[]): void {
  const r = pb.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== SUMMARY.value || (tag & 7) !== WIRE.bytes) {
      r.skipType(tag & 7);
      continue;
    }
    const v = pb.Reader.create(r.bytes());
    let name = '';
    let value: number | undefined;
    while (v.pos < v.len) {
      const t = v.uint32();
      if (t >>> 3 === VALUE.tag && (t & 7) === WIRE.bytes) name = v.string();
      else if (t >>> 3 === VALUE.simpleValue && (t & 7) === WIRE.fixed32) value = v.float();
      else v.skipType(t & 7);
    }
    if (value !== undefined) into.push({ tag: name, value });
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

interface EventWriterOptions {
  /** Appended to the file name, e.g. `.train` (TensorBoard only needs "tfevents" in it). */
  filenameSuffix?: string;
  /** Pending records are written out when a record arrives this long after the last write. */
  flushSecs?: number;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

/** Writes one `events.out.tfevents.<seconds>.<host>` file; records are buffered until `flush()`. */
export class EventWriter {
  readonly path: string;
  private fd: number | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private lastFlush: number;
  private readonly flushMs: number;
  private readonly now: () => number;

  constructor(logDir: string, options: EventWriterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.flushMs = (options.flushSecs ?? 10) * 1000;
    ensureDir(logDir);
    const start = this.now();
    const base = `events.out.tfevents.${Math.floor(start / 1000)}.${hostname()}${options.filenameSuffix ?? ''}`;
    // 'wx' never clobbers a run started in the same second; take the next free name instead.
    let path = join(logDir, base);
    for (let n = 1; ; n++) {
      try {
        this.fd = openSync(path, 'wx');
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        path = join(logDir, `${base}.${n}`);
      }
    }
    this.path = path;
    this.lastFlush = start;
    this.write({ wallTime: start / 1000, step: 0, fileVersion: 'brain.Event:2', scalars: [] });
    this.flush();
  }

  /** Logs one scalar; `wallTime` is in seconds since the epoch (default: now). */
  scalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.write({ wallTime: wallTime ?? this.now() / 1000, step, scalars: [{ tag, value }] });
  }

  /** Logs several scalars of one step as one event. */
  scalars(values: Record<string, number>, step: number, wallTime?: number): void {
    const scalars = Object.entries(values).map(([tag, value]) => ({ tag, value }));
    this.write({ wallTime: wallTime ?? this.now() / 1000, step, scalars });
  }

  private write(event: TbEvent): void {
    if (this.fd === undefined) throw new Error(`EventWriter: ${this.path} is closed`);
    if (!Number.isSafeInteger(event.step)) throw new RangeError(`EventWriter: step must be an integer, got ${event.step}`);
    const record = frameRecord(encodeEvent(event));
    this.pending.push(record);
    this.pendingBytes += record.length;
    if (this.pendingBytes >= 1 << 16 || this.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  /** Hands the pending records to the OS, so TensorBoard sees them. */
  flush(): void {
    if (this.fd === undefined) return;
    this.flushTo(this.fd);
  }

  private flushTo(fd: number): void {
    const records = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.lastFlush = this.now();
    withPath(this.path, () => {
      for (const record of records) {
        let off = 0;
        while (off < record.length) off += writeSync(fd, record, off);
      }
    });
  }

  /** Flushes and closes; the file is closed even when the flush fails (a full disk), and the error is rethrown. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (this.pending.length > 0) this.flushTo(fd);
    } finally {
      this.pending = [];
      closeSync(fd);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

/** A damaged event file: reported with the file and record index, as a one-line error. */
export class EventFileError extends UsageError {
  override readonly name = 'EventFileError';
}

/**
 * Makes a resumed run's history continue where its checkpoint left off: in every event file of
 * `dir`, drops the events of steps after `step` (written before a crash, and about to be written
 * again) and a torn last record (a kill mid-write). Files are rewritten atomically, only if changed.
 */
export function keepEventsUpTo(dir: string, step: number): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('events.out.tfevents.')) continue;
    const path = join(dir, name);
    const bytes = new Uint8Array(readFileSync(path));
    const kept: Uint8Array[] = [];
    let pos = 0;
    let changed = false;
    for (const r of records(bytes, path, false)) {
      if (r.event.step <= step) kept.push(bytes.subarray(r.start, r.end));
      else changed = true;
      pos = r.end;
    }
    if (changed || pos !== bytes.length) writeFileAtomic(path, kept);
  }
}

/** Parses an event file, checking both CRCs of every record. */
export function readEvents(path: string): TbEvent[] {
  const bytes = new Uint8Array(readFileSync(path));
  return [...records(bytes, path, true)].map((r) => r.event);
}

/** The records of an event file in order; a damaged record ends the file (strict: is an error). */
function* records(bytes: Uint8Array, path: string, strict: boolean): Generator<{ event: TbEvent; start: number; end: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  for (let index = 0; pos < bytes.length; index++) {
    const where = `${path}: record ${index} at byte ${pos}`;
    let problem: string | undefined;
    let event: TbEvent | undefined;
    let end = pos;
    if (pos + 12 > bytes.length) problem = 'truncated header';
    else if (view.getUint32(pos + 8, true) !== maskedCrc32c(bytes.subarray(pos, pos + 8))) problem = 'corrupt length (CRC mismatch)';
    else {
      const length = view.getBigUint64(pos, true);
      if (length > BigInt(bytes.length - pos - 16)) problem = 'truncated data';
      else {
        const start = pos + 12;
        end = start + Number(length);
        const data = bytes.subarray(start, end);
        if (view.getUint32(end, true) !== maskedCrc32c(data)) problem = 'corrupt data (CRC mismatch)';
        else {
          try {
            event = decodeEvent(data);
          } catch (err) {
            problem = `invalid Event proto: ${(err as Error).message}`;
          }
        }
      }
    }
    if (problem !== undefined || event === undefined) {
      if (strict) throw new EventFileError(`${where}: ${problem ?? 'unreadable'}`);
      return;
    }
    yield { event, start: pos, end: end + 4 };
    pos = end + 4;
  }
}
