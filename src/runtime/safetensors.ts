/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {key: value}}` padded with
 * spaces, then the raw little-endian tensor bytes; offsets are relative to the end of the header.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { describeDuplicate, duplicateKey } from '../util/json.js';
import {
  assertLittleEndian,
  bytesOf,
  bytesPer,
  DTYPES,
  isDtype,
  METADATA_KEY,
  numel,
  safetensorsChunks,
  type Dtype,
  type Tensor,
  type TensorInput,
  type TypedArray,
} from './safetensors-format.js';

export { safetensorsChunks, type Tensor, type TensorInput };

interface Safetensors {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** The reference implementation's limit: a larger header is a corrupt length, not a real file. */
const MAX_HEADER_BYTES = 100_000_000;

/** Writes a checkpoint atomically: an interrupted or failed save leaves the previous file intact. */
export function saveSafetensors(path: string, tensors: Readonly<Record<string, TensorInput>>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A file that is not valid safetensors: the user's input, so the CLI prints one line. */
class SafetensorsError extends UsageError {
  override readonly name = 'SafetensorsError';
}

/** Reads the header length from the first 8 bytes and checks it against the file size. */
function headerLength(first8: Uint8Array, fileBytes: number, file: string): number {
  if (fileBytes < 8) {
    throw new SafetensorsError(`${file}: not a safetensors file: too short (${fileBytes} bytes, expected at least 8)`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileBytes - 8)) {
    throw new SafetensorsError(`${file}: not a safetensors file: header length ${n} is beyond the file size (${fileBytes} bytes)`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`${file}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  return Number(n);
}

/** Parses and validates the JSON header; `dataBytes` is the size of the payload region. */
function parseHeader(bytes: Uint8Array, dataBytes: number, file: string): { entries: Entry[]; metadata: Record<string, string> } {
  let json: unknown;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(`${file}: invalid JSON header: ${(err as Error).message}`);
  }
  const dup = duplicateKey(text);
  if (dup) throw new SafetensorsError(`${file}: contradictory header: ${describeDuplicate(dup)}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(`${file}: invalid header: expected a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError(`${file}: invalid header: __metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(`${file}: invalid header: __metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, value, file));
  }
  checkOffsets(entries, dataBytes, file);
  return { entries, metadata };
}

function parseEntry(name: string, value: unknown, file: string): Entry {
  const where = `${file}: tensor ${JSON.stringify(name)}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError(`${where}: expected an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !isDtype(dtype)) {
    throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(`${where}: invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)) {
    throw new SafetensorsError(`${where}: invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  const want = numel(shape) * bytesPer(dtype);
  if (end - begin !== want) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${want}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

function checkOffsets(entries: Entry[], dataBytes: number, file: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.end > dataBytes) {
      throw new SafetensorsError(
        `${file}: tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] are out of range (the data region has ${dataBytes} bytes)`,
      );
    }
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (e.begin === e.end) continue;
    if (prev !== undefined && e.begin < prev.end) {
      throw new SafetensorsError(
        `${file}: tensors ${JSON.stringify(prev.name)} [${prev.begin}, ${prev.end}] and ${JSON.stringify(e.name)} [${e.begin}, ${e.end}] overlap`,
      );
    }
    prev = e;
  }
}

/** A typed array over `bytes`, viewed in place when aligned, copied when not. */
function typedView(dtype: Dtype, bytes: Uint8Array): TypedArray {
  const Ctor: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArray = DTYPES[dtype];
  const size = bytesPer(dtype);
  const n = bytes.byteLength / size;
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer, bytes.byteOffset, n);
  // A typed array cannot start at a misaligned offset: copy into a fresh, aligned buffer.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, n);
}

function makeTensor(e: Entry, data: TypedArray): Tensor {
  return { dtype: e.dtype, shape: e.shape, data } as Tensor;
}

/**
 * Decodes a safetensors file held in memory. Tensors are views into `bytes` where alignment
 * allows (so they share its memory) and copies otherwise. `file` names the source in errors.
 */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): Safetensors {
  assertLittleEndian();
  const n = headerLength(bytes.subarray(0, 8), bytes.byteLength, file);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, file);
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    tensors[e.name] = makeTensor(e, typedView(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end)));
  }
  return { tensors, metadata };
}

/**
 * Reads a checkpoint. Each tensor is read straight into its own freshly allocated typed array:
 * always aligned, no single allocation of the whole file, and each can be freed on its own.
 */
export function loadSafetensors(path: string, o: { headerOnly?: boolean } = {}): Safetensors {
  assertLittleEndian();
  const fd = openSync(path, 'r');
  try {
    const stat = fstatSync(fd);
    // Opening a directory succeeds on Linux; reading it would fail without naming it.
    if (!stat.isFile())
      throw new SafetensorsError(`Expected a safetensors file but ${path} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`);
    const fileBytes = stat.size;
    const first8 = new Uint8Array(8);
    readExactly(fd, first8.subarray(0, Math.min(8, fileBytes)), 0, path);
    const n = headerLength(first8, fileBytes, path);
    const headerBytes = new Uint8Array(n);
    readExactly(fd, headerBytes, 8, path);
    const dataStart = 8 + n;
    const { entries, metadata } = parseHeader(headerBytes, fileBytes - dataStart, path);
    const tensors: Record<string, Tensor> = {};
    if (o.headerOnly) return { tensors, metadata }; // the metadata alone: the tensors are not read
    for (const e of entries) {
      const data = new DTYPES[e.dtype]((e.end - e.begin) / bytesPer(e.dtype));
      readExactly(fd, bytesOf(data), dataStart + e.begin, path);
      tensors[e.name] = makeTensor(e, data);
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  let off = 0;
  while (off < into.byteLength) {
    const got = readSync(fd, into, off, into.byteLength - off, position + off);
    // The size was checked against fstat; a short read means the file shrank under us.
    if (got === 0) throw new SafetensorsError(`${file}: unexpected end of file at byte ${position + off}`);
    off += got;
  }
}
