/**
 * The part of Caffe's caffe.proto (BVLC) that holds a trained network's weights and the layer
 * parameters that decide what it computes, with caffe.proto's field numbers, as a protobufjs JSON
 * descriptor. Both layer formats: `layer` (LayerParameter, string types) and the older `layers`
 * (V1LayerParameter, an enum of types). Blob data (packed floats/doubles) is read as bytes: the wire
 * form of a packed field is the same as a bytes field, and it avoids a JavaScript number per weight.
 */
import protobuf from 'protobufjs';

const BlobShape = { fields: { dim: { rule: 'repeated', type: 'int64', id: 1 } } };

const layerParams = {
  ConvolutionParameter: {
    fields: {
      numOutput: { type: 'uint32', id: 1 },
      biasTerm: { type: 'bool', id: 2 },
      pad: { rule: 'repeated', type: 'uint32', id: 3 },
      kernelSize: { rule: 'repeated', type: 'uint32', id: 4 },
      group: { type: 'uint32', id: 5 },
      stride: { rule: 'repeated', type: 'uint32', id: 6 },
      padH: { type: 'uint32', id: 9 },
      padW: { type: 'uint32', id: 10 },
      kernelH: { type: 'uint32', id: 11 },
      kernelW: { type: 'uint32', id: 12 },
      strideH: { type: 'uint32', id: 13 },
      strideW: { type: 'uint32', id: 14 },
      dilation: { rule: 'repeated', type: 'uint32', id: 18 },
    },
  },
  InnerProductParameter: {
    fields: {
      numOutput: { type: 'uint32', id: 1 },
      biasTerm: { type: 'bool', id: 2 },
      axis: { type: 'int32', id: 5 },
      transpose: { type: 'bool', id: 6 },
    },
  },
  LRNParameter: {
    fields: {
      localSize: { type: 'uint32', id: 1 },
      alpha: { type: 'float', id: 2 },
      beta: { type: 'float', id: 3 },
      normRegion: { type: 'int32', id: 4 },
      k: { type: 'float', id: 5 },
    },
  },
  PoolingParameter: {
    fields: {
      pool: { type: 'int32', id: 1 },
      kernelSize: { type: 'uint32', id: 2 },
      stride: { type: 'uint32', id: 3 },
      pad: { type: 'uint32', id: 4 },
      globalPooling: { type: 'bool', id: 12 },
      roundMode: { type: 'int32', id: 13 },
    },
  },
  InputParameter: { fields: { shape: { rule: 'repeated', type: 'BlobShape', id: 1 } } },
};

const schema = {
  nested: {
    caffe: {
      nested: {
        BlobShape,
        BlobProto: {
          fields: {
            num: { type: 'int32', id: 1 },
            channels: { type: 'int32', id: 2 },
            height: { type: 'int32', id: 3 },
            width: { type: 'int32', id: 4 },
            data: { type: 'bytes', id: 5 },
            shape: { type: 'BlobShape', id: 7 },
            doubleData: { type: 'bytes', id: 8 },
          },
        },
        NetParameter: {
          fields: {
            name: { type: 'string', id: 1 },
            layers: { rule: 'repeated', type: 'V1LayerParameter', id: 2 },
            input: { rule: 'repeated', type: 'string', id: 3 },
            inputDim: { rule: 'repeated', type: 'int32', id: 4 },
            inputShape: { rule: 'repeated', type: 'BlobShape', id: 8 },
            layer: { rule: 'repeated', type: 'LayerParameter', id: 100 },
          },
        },
        LayerParameter: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'string', id: 2 },
            bottom: { rule: 'repeated', type: 'string', id: 3 },
            top: { rule: 'repeated', type: 'string', id: 4 },
            blobs: { rule: 'repeated', type: 'BlobProto', id: 7 },
            convolutionParam: { type: 'ConvolutionParameter', id: 106 },
            innerProductParam: { type: 'InnerProductParameter', id: 117 },
            lrnParam: { type: 'LRNParameter', id: 118 },
            poolingParam: { type: 'PoolingParameter', id: 121 },
            inputParam: { type: 'InputParameter', id: 143 },
          },
        },
        V1LayerParameter: {
          fields: {
            bottom: { rule: 'repeated', type: 'string', id: 2 },
            top: { rule: 'repeated', type: 'string', id: 3 },
            name: { type: 'string', id: 4 },
            type: { type: 'int32', id: 5 },
            blobs: { rule: 'repeated', type: 'BlobProto', id: 6 },
            convolutionParam: { type: 'ConvolutionParameter', id: 10 },
            innerProductParam: { type: 'InnerProductParameter', id: 17 },
            lrnParam: { type: 'LRNParameter', id: 18 },
            poolingParam: { type: 'PoolingParameter', id: 19 },
          },
        },
        ...layerParams,
      },
    },
  },
};

/** V1LayerParameter.LayerType values of the layers whose parameters matter here. */
export const V1_TYPES: Readonly<Record<number, string>> = {
  3: 'Concat',
  4: 'Convolution',
  5: 'Data',
  6: 'Dropout',
  14: 'InnerProduct',
  15: 'LRN',
  17: 'Pooling',
  18: 'ReLU',
  20: 'Softmax',
  21: 'SoftmaxWithLoss',
};

export interface CaffeBlob {
  num?: number;
  channels?: number;
  height?: number;
  width?: number;
  data?: Uint8Array;
  doubleData?: Uint8Array;
  shape?: { dim?: number[] };
}

export interface CaffeLayer {
  name?: string;
  type?: string | number;
  bottom?: string[];
  top?: string[];
  blobs?: CaffeBlob[];
  convolutionParam?: {
    numOutput?: number;
    biasTerm?: boolean;
    pad?: number[];
    kernelSize?: number[];
    group?: number;
    stride?: number[];
    padH?: number;
    padW?: number;
    strideH?: number;
    strideW?: number;
    dilation?: number[];
  };
  innerProductParam?: { numOutput?: number; biasTerm?: boolean; axis?: number; transpose?: boolean };
  lrnParam?: { localSize?: number; alpha?: number; beta?: number; normRegion?: number; k?: number };
  poolingParam?: { pool?: number; kernelSize?: number; stride?: number; pad?: number; globalPooling?: boolean; roundMode?: number };
  inputParam?: { shape?: { dim?: number[] }[] };
}

interface CaffeNet {
  name?: string;
  layers?: CaffeLayer[];
  layer?: CaffeLayer[];
  inputDim?: number[];
  inputShape?: { dim?: number[] }[];
}

const Net = protobuf.Root.fromJSON(schema).lookupType('caffe.NetParameter');

export function decodeCaffeNet(bytes: Uint8Array): CaffeNet {
  const m = Net.decode(bytes);
  return Net.toObject(m, { longs: Number, defaults: false, arrays: false }) as CaffeNet;
}
