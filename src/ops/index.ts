/** Every op family ilsvrc emits, in one explicit list (the gradient checks sweep it). */
import type { OpDef } from '../graph/graph.js';
import { BatchNormalization } from './batchnorm.js';
import { Conv, ConvTranspose } from './conv.js';
import {
  Add,
  Cast,
  Div,
  Equal,
  Exp,
  Greater,
  Identity,
  Log,
  Mul,
  Neg,
  Pow,
  ReduceMean,
  Relu,
  Sqrt,
  Sub,
  Sum,
  Where,
} from './elementwise.js';
import { Gemm, MatMul } from './linalg.js';
import { LRN } from './lrn.js';
import { AveragePool, GlobalAveragePool, MaxPool, ScatterElements } from './pool.js';
import { Concat, Expand, Flatten, Gather, Pad, ReduceMax, ReduceSum, Reshape, Slice, Transpose } from './shape.js';
import { LogSoftmax, Softmax, TopK } from './softmax.js';

// OpDef's attribute type differs per op; the registry only reads fields common to all.
const OPS: readonly OpDef<never>[] = [
  Conv,
  ConvTranspose,
  Relu,
  LRN,
  BatchNormalization,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  Concat,
  Flatten,
  Reshape,
  Transpose,
  Slice,
  Pad,
  Gather,
  Expand,
  Gemm,
  MatMul,
  Add,
  Sub,
  Mul,
  Div,
  Sum,
  Neg,
  Exp,
  Log,
  Sqrt,
  Pow,
  Identity,
  Where,
  Greater,
  Equal,
  Cast,
  ReduceSum,
  ReduceMean,
  ReduceMax,
  Softmax,
  LogSoftmax,
  TopK,
  ScatterElements,
] as readonly OpDef<never>[];

/** Op types that carry a vector-Jacobian rule. */
export function differentiableOps(): string[] {
  return OPS.filter((d) => d.vjp !== undefined).map((d) => d.type);
}
