/**
 * The subset of onnx.proto that ilsvrc reads and writes, with onnx.proto's field numbers, encoded
 * and decoded with protobufjs. Plain typed objects go in and come out; int64 fields are numbers
 * (every value we store fits in 2^53).
 */
import protobuf from 'protobufjs';
import { UsageError } from '../util/errors.js';

export const TensorDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int64Data?: number[];
  doubleData?: number[];
  int32Data?: number[];
  /** Weights kept in a file beside the model: keys "location", "offset", "length" (onnx.proto's external data). */
  externalData?: { key: string; value: string }[];
  /** 1 (EXTERNAL) when the values are in `externalData`'s file. */
  dataLocation?: number;
}

export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

interface DimProto {
  dimValue?: number;
  dimParam?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType: number; shape?: { dim: DimProto[] } } };
  docString?: string;
}

export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: AttributeProto[];
  docString?: string;
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer?: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  docString?: string;
}

export interface ModelProto {
  irVersion: number;
  opsetImport: { domain?: string; version: number }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  metadataProps?: { key: string; value: string }[];
}

const schema = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            modelVersion: { type: 'int64', id: 5 },
            docString: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            metadataProps: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        StringStringEntryProto: {
          fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            docString: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            valueInfo: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            docString: { type: 'string', id: 6 },
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            g: { type: 'GraphProto', id: 6 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            type: { type: 'int32', id: 20 },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            docString: { type: 'string', id: 3 },
          },
        },
        TypeProto: {
          fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } },
        },
        TypeProtoTensor: {
          fields: {
            elemType: { type: 'int32', id: 1 },
            shape: { type: 'TensorShapeProto', id: 2 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
        },
        Dimension: {
          oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
          fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            floatData: { rule: 'repeated', type: 'float', id: 4 },
            int32Data: { rule: 'repeated', type: 'int32', id: 5 },
            int64Data: { rule: 'repeated', type: 'int64', id: 7 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
            doubleData: { rule: 'repeated', type: 'double', id: 10 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(schema);
const Model = root.lookupType('onnx.ModelProto');

/** Node `n`'s attribute `name`, where it is set. */
export function attribute(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name);
}

/** A string attribute's text, where it is set. */
export function stringAttribute(n: NodeProto, name: string): string | undefined {
  const s = attribute(n, name)?.s;
  return s && new TextDecoder().decode(s);
}

/** The dims a value declares (0 for a symbolic or missing dim). */
export function declaredDims(v: ValueInfoProto): number[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue ?? 0);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return Model.encode(model as unknown as protobuf.Message).finish();
}

/**
 * Decodes a ModelProto and checks what the decoder alone cannot: a graph is there, and every
 * tensor's data agrees with its dims and type (a short or padded raw_data, a count of values that
 * is not the product of the dims, absurd dims). `source` names the bytes in errors (a file name).
 */
export function decodeModel(bytes: Uint8Array, source = 'the ONNX bytes'): ModelProto {
  let message: protobuf.Message;
  try {
    message = Model.decode(bytes);
  } catch (e) {
    throw new UsageError(`Expected an ONNX model (ModelProto) in ${source} but its bytes do not decode: ${(e as Error).message}`);
  }
  // longs → numbers; bytes stay as views into the input (no copy of the weights).
  const obj = Model.toObject(message, { longs: Number, defaults: false, arrays: false, oneofs: false });
  if (!obj.graph) throw new UsageError(`Expected an ONNX model with a graph in ${source} but found none`);
  const model = obj as unknown as ModelProto;
  checkGraph(model.graph, source);
  return model;
}

/** Bytes per element of the tensor types ilsvrc reads, and the repeated field that holds them when raw_data does not. */
const ELEMENT: Readonly<Record<number, { bytes: number; field: 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' }>> = {
  [TensorDataType.FLOAT]: { bytes: 4, field: 'floatData' },
  [TensorDataType.UINT8]: { bytes: 1, field: 'int32Data' },
  [TensorDataType.INT8]: { bytes: 1, field: 'int32Data' },
  [TensorDataType.INT32]: { bytes: 4, field: 'int32Data' },
  [TensorDataType.INT64]: { bytes: 8, field: 'int64Data' },
  [TensorDataType.BOOL]: { bytes: 1, field: 'int32Data' },
  [TensorDataType.FLOAT16]: { bytes: 2, field: 'int32Data' },
  [TensorDataType.DOUBLE]: { bytes: 8, field: 'doubleData' },
};

function checkGraph(g: GraphProto, source: string): void {
  for (const t of g.initializer ?? []) checkTensor(t, `initializer ${JSON.stringify(t.name)}`, source);
  checkSingleDefinitions(g, source);
  checkAcyclic(g, source);
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      const where = `attribute ${a.name} of node ${JSON.stringify(n.name ?? n.opType)}`;
      if (a.t) checkTensor(a.t, where, source);
      if (a.g) checkGraph(a.g, source);
    }
  }
}

const nodeLabel = (n: NodeProto): string => `${n.opType} ${JSON.stringify(n.name || n.output?.[0] || '')}`;

/**
 * Every value has one definition (ONNX's single assignment): two initializers, or two nodes, or an
 * initializer and a node defining one name contradict each other, and a reader would silently
 * keep one of them.
 */
function checkSingleDefinitions(g: GraphProto, source: string): void {
  const defined = new Map<string, string>();
  const define = (name: string, what: string): void => {
    if (name === '') return;
    const before = defined.get(name);
    if (before !== undefined) {
      throw new UsageError(
        `Expected one definition of ${JSON.stringify(name)} in ${source} but it is defined twice: ${before} and ${what}`,
      );
    }
    defined.set(name, what);
  };
  for (const t of g.initializer ?? []) define(t.name, `an initializer of dims [${(t.dims ?? []).join(', ')}] and data type ${t.dataType}`);
  for (const n of g.node ?? []) for (const o of n.output ?? []) define(o, `the output of ${nodeLabel(n)}`);
}

/** The nodes form no cycle: a value computed from itself has no order to run in. */
function checkAcyclic(g: GraphProto, source: string): void {
  const nodes = g.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o !== '' && producer.set(o, i)));
  const inputsOf = (i: number): number[] => (nodes[i]!.input ?? []).flatMap((v) => (producer.has(v) ? [producer.get(v)!] : []));
  // Kahn's algorithm: what it cannot order lies on a cycle or after one.
  const waiting = nodes.map((_, i) => inputsOf(i).length);
  const readers = nodes.map((): number[] => []);
  nodes.forEach((_, i) => inputsOf(i).forEach((p) => readers[p]!.push(i)));
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  let done = 0;
  while (ready.length) {
    const i = ready.pop()!;
    done++;
    for (const r of readers[i]!) if (--waiting[r]! === 0) ready.push(r);
  }
  if (done === nodes.length) return;
  // Walk back through unordered producers until one repeats: that stretch is a cycle.
  const path: number[] = [];
  const at = new Map<number, number>();
  let i = waiting.findIndex((w) => w > 0);
  while (!at.has(i)) {
    at.set(i, path.length);
    path.push(i);
    i = inputsOf(i).find((p) => waiting[p]! > 0)!;
  }
  const cycle = path
    .slice(at.get(i))
    .reverse()
    .map((k) => nodeLabel(nodes[k]!));
  throw new UsageError(`Expected an acyclic graph in ${source} but its nodes form a cycle: ${[...cycle, cycle[0]].join(' -> ')}`);
}

function checkTensor(t: TensorProto, where: string, source: string): void {
  const dims = t.dims ?? [];
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new UsageError(`Expected non-negative integer dims for ${where} in ${source} but received [${dims.join(', ')}]`);
  }
  const count = dims.reduce((a, d) => a * d, 1);
  const type = ELEMENT[t.dataType];
  // Strings and types ilsvrc never writes are left to ONNX Runtime.
  if (type === undefined) return;
  // 2^31 elements of float32 are already 8 GiB: a larger count is a damaged file, not a weight.
  if (!Number.isSafeInteger(count * type.bytes) || count > 2 ** 31) {
    throw new UsageError(`Expected dims of a tensor that fits in memory for ${where} in ${source} but received [${dims.join(', ')}]`);
  }
  const shape = `[${dims.join(', ')}]`;
  // Values kept in a file beside the model are checked by whoever reads that file (src/import/onnx.ts).
  if (t.dataLocation === DataLocation.EXTERNAL) return;
  if (t.rawData !== undefined && t.rawData.byteLength > 0) {
    if (t.rawData.byteLength !== count * type.bytes) {
      throw new UsageError(
        `Expected ${count * type.bytes} bytes of raw_data for ${where} (dims ${shape}) in ${source} but received ${t.rawData.byteLength}`,
      );
    }
    return;
  }
  const values = t[type.field]?.length ?? 0;
  if (values !== count) throw new UsageError(`Expected ${count} values for ${where} (dims ${shape}) in ${source} but received ${values}`);
}
