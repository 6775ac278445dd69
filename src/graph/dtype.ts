/** Element types as a type-level map to their typed arrays, and their ONNX codes. */
import { TensorDataType } from '../onnx/proto.js';

interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}
export type DType = keyof DTypeArrays;
export type TypedArray = DTypeArrays[DType];

export const DTYPES = {
  float32: { onnx: TensorDataType.FLOAT, bytes: 4 },
  float64: { onnx: TensorDataType.DOUBLE, bytes: 8 },
  int64: { onnx: TensorDataType.INT64, bytes: 8 },
  int32: { onnx: TensorDataType.INT32, bytes: 4 },
  uint8: { onnx: TensorDataType.UINT8, bytes: 1 },
  bool: { onnx: TensorDataType.BOOL, bytes: 1 },
} as const satisfies Record<DType, { onnx: number; bytes: number }>;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return shape.length === 0 ? 'scalar' : shape.join('×');
}
