/**
 * Writing the safetensors format (src/runtime/safetensors.ts) without touching a file: the bytes as
 * chunks, for a file on disk in Node or a download in a browser.
 */

/** The dtypes ilsvrc stores, as safetensors names them, and their typed arrays. */
export const DTYPES = {
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
} as const;

export type Dtype = keyof typeof DTYPES;

interface DtypeArrays {
  F32: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  I32: Int32Array;
  U8: Uint8Array;
}

export type TypedArray = DtypeArrays[Dtype];

/** One tensor; `dtype` narrows `data`. */
export type Tensor = { [D in Dtype]: { dtype: D; shape: number[]; data: DtypeArrays[D] } }[Dtype];

/**
 * What `saveSafetensors` accepts: looser than `Tensor` so that generic code (a dtype held in a
 * variable) needs no cast; that the data matches the dtype is checked when saving.
 */
export interface TensorInput {
  dtype: Dtype;
  shape: readonly number[];
  data: TypedArray;
}

export const METADATA_KEY = '__metadata__';

export function isDtype(name: string): name is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPES, name);
}

export function bytesPer(dtype: Dtype): number {
  return DTYPES[dtype].BYTES_PER_ELEMENT;
}

export function assertLittleEndian(): void {
  // Typed arrays use the host's byte order and safetensors is little-endian.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('safetensors: big-endian hosts are not supported');
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * The header and the order of the tensor payloads. Tensors are laid out by element size, largest
 * first, then by name: every payload then starts at a multiple of its element size, so a reader
 * can view it in place, and the file is deterministic.
 */
function planSafetensors(
  tensors: Readonly<Record<string, TensorInput>>,
  metadata?: Record<string, string>,
): { header: Uint8Array; order: string[]; dataBytes: number } {
  for (const [name, t] of Object.entries(tensors)) checkTensor(name, t);
  const order = Object.keys(tensors).sort((a, b) => {
    const ta = tensors[a] as TensorInput;
    const tb = tensors[b] as TensorInput;
    return bytesPer(tb.dtype) - bytesPer(ta.dtype) || (a < b ? -1 : a > b ? 1 : 0);
  });
  const json: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new TypeError(`safetensors: metadata value for ${JSON.stringify(k)} must be a string, got ${typeof v}`);
      }
    }
    json[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const name of order) {
    const t = tensors[name] as TensorInput;
    const end = offset + t.data.byteLength;
    json[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const text = JSON.stringify(json);
  const raw = new TextEncoder().encode(text);
  // Pad with spaces so the data starts 8-byte aligned (8 + N is then a multiple of 8).
  const padded = Math.ceil(raw.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(raw, 8);
  return { header, order, dataBytes: offset };
}

function checkTensor(name: string, t: TensorInput): void {
  if (name === '' || name === METADATA_KEY) {
    throw new TypeError(`safetensors: invalid tensor name ${JSON.stringify(name)}`);
  }
  if (!isDtype(t.dtype)) {
    throw new TypeError(
      `safetensors: unknown dtype ${JSON.stringify(t.dtype)} for tensor ${name} (supported: ${Object.keys(DTYPES).join(', ')})`,
    );
  }
  if (!(t.data instanceof DTYPES[t.dtype])) {
    throw new TypeError(
      `safetensors: tensor ${name} has dtype ${t.dtype} but its data is a ${t.data.constructor.name}, expected ${DTYPES[t.dtype].name}`,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TypeError(`safetensors: tensor ${name} has an invalid shape ${JSON.stringify(t.shape)}`);
  }
  if (numel(t.shape) !== t.data.length) {
    throw new TypeError(
      `safetensors: tensor ${name} has shape [${t.shape.join(', ')}] (${numel(t.shape)} elements) but ${t.data.length} elements of data`,
    );
  }
}

/** The file's bytes as a lazy sequence of chunks: header, then each tensor's own buffer. */
export function* safetensorsChunks(
  tensors: Readonly<Record<string, TensorInput>>,
  metadata?: Record<string, string>,
): Generator<Uint8Array> {
  assertLittleEndian();
  const { header, order } = planSafetensors(tensors, metadata);
  yield header;
  for (const name of order) yield bytesOf((tensors[name] as TensorInput).data);
}
