/** The ONNX decoder refuses tensors whose data disagrees with their dims, in one line naming the source. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeModel, encodeModel, TensorDataType, type ModelProto, type TensorProto } from '../../src/onnx/proto.js';
import { UsageError } from '../../src/util/errors.js';

function model(t: TensorProto): Uint8Array {
  const m: ModelProto = {
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    graph: { name: 'g', node: [{ input: ['x', 'w'], output: ['y'], opType: 'Add' }], initializer: [t], input: [], output: [] },
  };
  return encodeModel(m);
}

const w = (over: Partial<TensorProto>): TensorProto => ({
  name: 'w',
  dims: [2, 3],
  dataType: TensorDataType.FLOAT,
  rawData: new Uint8Array(24),
  ...over,
});
/** The same without raw_data (values, if any, in a typed field). */
const typed = (over: Partial<TensorProto>): TensorProto => ({ name: 'w', dims: [2, 3], dataType: TensorDataType.FLOAT, ...over });

function refuses(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeModel(bytes, 'm.onnx'),
    (e: unknown) => e instanceof UsageError && pattern.test(e.message) && !e.message.includes('\n'),
  );
}

test('consistent tensors decode, raw or typed', () => {
  assert.equal(decodeModel(model(w({}))).graph.initializer?.[0]?.rawData?.byteLength, 24);
  assert.deepEqual(decodeModel(model(typed({ floatData: [1, 2, 3, 4, 5, 6] }))).graph.initializer?.[0]?.floatData, [1, 2, 3, 4, 5, 6]);
  assert.equal(decodeModel(model(typed({ dims: [0] }))).graph.initializer?.length, 1);
});

test('short, long, missing or miscounted data and absurd dims are refused', () => {
  refuses(
    model(w({ rawData: new Uint8Array(20) })),
    /^Expected 24 bytes of raw_data for initializer "w" \(dims \[2, 3\]\) in m\.onnx but received 20$/,
  );
  refuses(model(w({ rawData: new Uint8Array(28) })), /but received 28$/);
  refuses(model(typed({ floatData: [1, 2] })), /^Expected 6 values for initializer "w" \(dims \[2, 3\]\) in m\.onnx but received 2$/);
  refuses(model(typed({})), /Expected 6 values .* but received 0$/);
  refuses(model(w({ dataType: TensorDataType.INT64, rawData: new Uint8Array(24) })), /Expected 48 bytes of raw_data/);
  refuses(
    model(w({ dims: [2 ** 40, 2 ** 20] })),
    /^Expected dims of a tensor that fits in memory for initializer "w" in m\.onnx but received \[1099511627776, 1048576\]$/,
  );
  refuses(model(w({ dims: [-1, 6] })), /Expected non-negative integer dims/);
  refuses(new Uint8Array([0xff, 0xff, 0xff]), /^Expected an ONNX model \(ModelProto\) in m\.onnx but its bytes do not decode/);
  refuses(new Uint8Array(0), /^Expected an ONNX model with a graph in m\.onnx but found none$/);
});
