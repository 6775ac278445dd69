import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  loadSafetensors,
  parseSafetensors,
  safetensorsChunks,
  saveSafetensors,
  type Tensor,
  type TensorInput,
} from '../../src/runtime/safetensors.js';
import { UsageError } from '../../src/util/errors.js';
import { writeFileAtomic } from '../../src/util/fsx.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-st-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file from a header object and a payload, padded or not, as another writer might make it. */
function handFile(header: unknown, payload: number[], pad = true): Uint8Array {
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.from(json);
  const out = new Uint8Array(8 + head.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(payload, 8 + head.length);
  return out;
}

function allDtypes(): Record<string, Tensor> {
  return {
    'conv1.weight': { dtype: 'F32', shape: [2, 1, 2, 2], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -0, Infinity, NaN]) },
    'stats.mean': { dtype: 'F64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) },
    step: { dtype: 'I64', shape: [], data: BigInt64Array.from([-(2n ** 62n) - 7n]) },
    labels: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
    mask: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 255, 7]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

function assertSameTensors(got: Record<string, Tensor>, want: Record<string, Tensor>): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assert.ok(g, name);
    assert.equal(g.dtype, w.dtype, name);
    assert.deepEqual(g.shape, w.shape, name);
    assert.equal(g.data.constructor, w.data.constructor, name);
    // Object.is semantics: NaN and -0 survive bit for bit.
    assert.deepEqual([...g.data], [...w.data], name);
  }
}

test('round trip of every dtype with metadata', () => {
  const p = join(dir, 'all.safetensors');
  const tensors = allDtypes();
  saveSafetensors(p, tensors, { format: 'pt', model: 'alexnet', note: 'ünïcödé ✓' });
  const back = loadSafetensors(p);
  assertSameTensors(back.tensors, tensors);
  assert.deepEqual(back.metadata, { format: 'pt', model: 'alexnet', note: 'ünïcödé ✓' });
  // The in-memory parser agrees, and views the (aligned) payloads in place.
  const bytes = new Uint8Array(readFileSync(p));
  const parsed = parseSafetensors(bytes, p);
  assertSameTensors(parsed.tensors, tensors);
  for (const t of Object.values(parsed.tensors)) assert.equal(t.data.buffer, bytes.buffer);
});

test('the writer aligns payloads: header length and offsets are multiples of the element size', () => {
  const bytes = new Uint8Array(readFileSync(join(dir, 'all.safetensors')));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString()) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const size: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, U8: 1 };
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    assert.equal(e.data_offsets[0] % (size[e.dtype] ?? 0), 0, name);
  }
});

test('bytes match a hand-written file exactly', () => {
  const p = join(dir, 'tiny.safetensors');
  saveSafetensors(p, { a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } }, { format: 'pt' });
  const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   ';
  const want = Buffer.concat([
    Buffer.from([88, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from(json, 'latin1'),
    Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]),
  ]);
  assert.equal(json.length, 88);
  assert.deepEqual(readFileSync(p), want);
  const back = loadSafetensors(p);
  assert.deepEqual([...(back.tensors.a?.data ?? [])], [1, 2]);
});

test('a misaligned layout from another writer is read correctly (copies where it must)', () => {
  // U8[3] first puts the F32 at offset 3 and the I64 at offset 11; header not padded either.
  const f32 = new Uint8Array(Float32Array.from([1.5, -2]).buffer);
  const i64 = new Uint8Array(BigInt64Array.from([-5n]).buffer);
  const file = handFile(
    {
      m: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      f: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
      i: { dtype: 'I64', shape: [1], data_offsets: [11, 19] },
    },
    [9, 8, 7, ...f32, ...i64],
    false,
  );
  const p = join(dir, 'misaligned.safetensors');
  writeFileSync(p, file);
  const want: Record<string, Tensor> = {
    m: { dtype: 'U8', shape: [3], data: Uint8Array.from([9, 8, 7]) },
    f: { dtype: 'F32', shape: [2], data: Float32Array.from([1.5, -2]) },
    i: { dtype: 'I64', shape: [1], data: BigInt64Array.from([-5n]) },
  };
  assertSameTensors(loadSafetensors(p).tensors, want);
  assertSameTensors(parseSafetensors(file).tensors, want);
  // Also at an odd offset inside a larger buffer.
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  assertSameTensors(parseSafetensors(shifted.subarray(1)).tensors, want);
});

function expectCorrupt(bytes: Uint8Array, pattern: RegExp): void {
  const p = join(dir, 'corrupt.safetensors');
  writeFileSync(p, bytes);
  assert.throws(
    () => loadSafetensors(p),
    (err: Error) => {
      assert.ok(err instanceof UsageError, `${err.name}: ${err.message}`);
      assert.match(err.message, pattern);
      assert.ok(err.message.startsWith(p), err.message);
      return true;
    },
  );
  assert.throws(() => parseSafetensors(bytes, 'mem'), pattern);
}

test('corrupt and truncated files are rejected with a message naming the file', () => {
  const good = new Uint8Array(readFileSync(join(dir, 'tiny.safetensors')));
  expectCorrupt(new Uint8Array(0), /too short \(0 bytes, expected at least 8\)/);
  expectCorrupt(good.subarray(0, 5), /too short \(5 bytes/);
  expectCorrupt(good.subarray(0, 50), /header length 88 is beyond the file size \(50 bytes\)/);
  const hugeLen = good.slice();
  new DataView(hugeLen.buffer).setBigUint64(0, 2n ** 63n, true);
  expectCorrupt(hugeLen, /header length 9223372036854775808 is beyond the file size/);
  // Truncated payload: the last tensor no longer fits.
  expectCorrupt(good.subarray(0, good.length - 2), /tensor "a": data_offsets \[0, 8\] are out of range \(the data region has 6 bytes\)/);
  const badJson = good.slice();
  badJson[8] = 0x5b; // '{' -> '['
  expectCorrupt(badJson, /invalid JSON header/);
  expectCorrupt(handFile([1, 2], []), /expected a JSON object/);
  expectCorrupt(
    handFile({ a: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, [0, 0]),
    /tensor "a": unknown dtype "BF16" \(supported: F32, F64, I64, I32, U8\)/,
  );
  expectCorrupt(
    handFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(12).fill(0)),
    /span 8 bytes but shape \[3\] of F32 needs 12/,
  );
  expectCorrupt(handFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, new Array(8).fill(0)), /end before they begin/);
  expectCorrupt(handFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Array(4).fill(0)), /invalid shape \[-1\]/);
  expectCorrupt(handFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, new Array(4).fill(0)), /invalid data_offsets \[0\]/);
  expectCorrupt(
    handFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] } },
      new Array(8).fill(0),
    ),
    /tensors "a" \[0, 8\] and "b" \[6, 8\] overlap/,
  );
  expectCorrupt(handFile({ __metadata__: { epoch: 3 } }, []), /__metadata__\.epoch must be a string/);
});

test('invalid tensors are refused before anything is written', () => {
  const p = join(dir, 'refused.safetensors');
  writeFileSync(p, 'old');
  // The input type is loose on purpose (generic code holds dtypes in variables): checked at run time.
  const wrongType: Record<string, TensorInput> = { x: { dtype: 'F32', shape: [2], data: Float64Array.from([1, 2]) } };
  assert.throws(() => saveSafetensors(p, wrongType), /tensor x has dtype F32 but its data is a Float64Array, expected Float32Array/);
  assert.throws(
    () => saveSafetensors(p, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
    /shape \[3\] \(3 elements\) but 2 elements/,
  );
  assert.throws(() => saveSafetensors(p, { __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /invalid tensor name/);
  assert.equal(readFileSync(p, 'utf8'), 'old');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('a failure mid-write leaves the previous checkpoint intact and no temp file', () => {
  const p = join(dir, 'ckpt.safetensors');
  const v1 = { w: { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) } } satisfies Record<string, Tensor>;
  saveSafetensors(p, v1, { epoch: '1' });
  const before = readFileSync(p);
  const big: Record<string, Tensor> = { w: { dtype: 'F32', shape: [1 << 18], data: new Float32Array(1 << 18).fill(9) } };
  // The header and the first payload are written, then the source fails (as a full disk would).
  function* failing(): Generator<Uint8Array> {
    let i = 0;
    for (const chunk of safetensorsChunks(big, { epoch: '2' })) {
      yield chunk;
      if (++i === 2) throw new Error('ENOSPC: no space left on device');
    }
  }
  assert.throws(() => writeFileAtomic(p, failing()), /ENOSPC/);
  assert.deepEqual(readFileSync(p), before);
  assert.deepEqual(loadSafetensors(p).metadata, { epoch: '1' });
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('.')),
    [],
  );
});

test('a directory given as a checkpoint is named as such, not read', () => {
  const folder = join(dir, 'a-run');
  mkdirSync(folder);
  assert.throws(
    () => loadSafetensors(folder),
    (e: unknown) => e instanceof UsageError && e.message === `Expected a safetensors file but ${folder} is a directory`,
  );
});
