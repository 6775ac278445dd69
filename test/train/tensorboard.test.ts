import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import {
  crc32c,
  decodeEvent,
  encodeEvent,
  EventFileError,
  EventWriter,
  frameRecord,
  maskedCrc32c,
  readEvents,
} from '../../src/train/tensorboard.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-tb-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('CRC32C matches the standard check values', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, and of 0xff.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  // Incremental use equals one pass.
  const all = new TextEncoder().encode('123456789');
  assert.equal(crc32c(all.subarray(4), crc32c(all.subarray(0, 4))), 0xe3069283);
});

test('masked CRC rotates right by 15 and adds the TFRecord constant', () => {
  const data = new TextEncoder().encode('123456789');
  const crc = 0xe3069283;
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  assert.equal(maskedCrc32c(data), (rotated + 0xa282ead8) % 2 ** 32);
});

test('a scalar event encodes to the expected protobuf bytes', () => {
  const bytes = encodeEvent({ wallTime: 2, step: 3, scalars: [{ tag: 'loss', value: 0.5 }] });
  const want = [
    0x09,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x40, // wall_time = 2.0 (field 1, fixed64)
    0x10,
    0x03, // step = 3 (field 2, varint)
    0x2a,
    0x0d, // summary (field 5), 13 bytes
    0x0a,
    0x0b, // value (field 1), 11 bytes
    0x0a,
    0x04,
    0x6c,
    0x6f,
    0x73,
    0x73, // tag = "loss"
    0x15,
    0,
    0,
    0,
    0x3f, // simple_value = 0.5 (field 2, fixed32)
  ];
  assert.deepEqual([...bytes], want);
  const version = encodeEvent({ wallTime: 0, step: 0, fileVersion: 'brain.Event:2', scalars: [] });
  assert.deepEqual([...version.subarray(9)], [0x1a, 13, ...new TextEncoder().encode('brain.Event:2')]);
  assert.deepEqual(decodeEvent(bytes), { wallTime: 2, step: 3, scalars: [{ tag: 'loss', value: 0.5 }] });
});

test('large and negative steps survive the int64 varint', () => {
  for (const step of [2 ** 40 + 1, -1, Number.MAX_SAFE_INTEGER]) {
    assert.equal(decodeEvent(encodeEvent({ wallTime: 1, step, scalars: [] })).step, step);
  }
});

test('write then read back', () => {
  const logDir = join(dir, 'run1');
  let clock = 1_700_000_000_500;
  const w = new EventWriter(logDir, { now: () => clock });
  assert.equal(basename(w.path), `events.out.tfevents.1700000000.${hostname()}`);
  w.scalar('train/loss', 2.3, 1);
  clock += 1000;
  w.scalar('train/loss', 0.4213, 2, 1234.5);
  w.scalars({ 'val/acc': 0.912, 'val/loss': 0.3 }, 2);
  w.close();
  w.close(); // idempotent
  const events = readEvents(w.path);
  assert.equal(events.length, 4);
  assert.deepEqual(events[0], { wallTime: 1_700_000_000.5, step: 0, fileVersion: 'brain.Event:2', scalars: [] });
  assert.deepEqual(events[1], { wallTime: 1_700_000_000.5, step: 1, scalars: [{ tag: 'train/loss', value: Math.fround(2.3) }] });
  assert.deepEqual(events[2], { wallTime: 1234.5, step: 2, scalars: [{ tag: 'train/loss', value: Math.fround(0.4213) }] });
  assert.deepEqual(events[3]?.scalars, [
    { tag: 'val/acc', value: Math.fround(0.912) },
    { tag: 'val/loss', value: Math.fround(0.3) },
  ]);
  assert.throws(() => w.scalar('x', 1, 3), /is closed/);
});

test('records are buffered until flush, and flushed by time', () => {
  const logDir = join(dir, 'run2');
  let clock = 1_700_000_100_000;
  const w = new EventWriter(logDir, { now: () => clock, flushSecs: 5 });
  const versionOnly = readFileSync(w.path).length;
  w.scalar('a', 1, 1);
  assert.equal(readFileSync(w.path).length, versionOnly);
  w.flush();
  const one = readFileSync(w.path).length;
  assert.ok(one > versionOnly);
  w.scalar('a', 2, 2);
  clock += 6000;
  w.scalar('a', 3, 3);
  assert.equal(readEvents(w.path).length, 4);
  w.close();
});

test('two writers in the same second get different files', () => {
  const logDir = join(dir, 'run3');
  const now = (): number => 1_700_000_200_000;
  const a = new EventWriter(logDir, { now });
  const b = new EventWriter(logDir, { now, filenameSuffix: '.val' });
  const c = new EventWriter(logDir, { now });
  a.close();
  b.close();
  c.close();
  assert.equal(new Set([a.path, b.path, c.path]).size, 3);
  assert.equal(readdirSync(logDir).length, 3);
  assert.ok(b.path.endsWith('.val'));
});

test('a flipped byte or a truncated file is detected and names the record', () => {
  const logDir = join(dir, 'run4');
  const w = new EventWriter(logDir);
  w.scalar('loss', 1, 1);
  w.scalar('loss', 0.5, 2);
  w.close();
  const good = readFileSync(w.path);
  const first = frameRecord(encodeEvent({ wallTime: 0, step: 0, fileVersion: 'brain.Event:2', scalars: [] })).length;
  const p = join(dir, 'bad.tfevents');

  const dataFlip = Buffer.from(good);
  dataFlip[first + 14] = (dataFlip[first + 14] ?? 0) ^ 0x01;
  writeFileSync(p, dataFlip);
  assert.throws(
    () => readEvents(p),
    (err: Error) =>
      err instanceof EventFileError && /record 1 at byte \d+: corrupt data \(CRC mismatch\)/.test(err.message) && err.message.startsWith(p),
  );

  const lengthFlip = Buffer.from(good);
  lengthFlip[first] = (lengthFlip[first] ?? 0) ^ 0x10;
  writeFileSync(p, lengthFlip);
  assert.throws(() => readEvents(p), /record 1 at byte \d+: corrupt length \(CRC mismatch\)/);

  writeFileSync(p, good.subarray(0, good.length - 3));
  assert.throws(() => readEvents(p), /record 2 at byte \d+: truncated data/);
  writeFileSync(p, good.subarray(0, first + 5));
  assert.throws(() => readEvents(p), /record 1 at byte \d+: truncated header/);
});
