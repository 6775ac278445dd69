/**
 * An ONNX model that ilsvrc did not write (no ilsvrc metadata, its own input and output names):
 * the scores are the mean of each input channel, so a test knows what it must predict.
 */
import { encodeModel } from '../../src/onnx/proto.js';

export function channelMeanModel(size: number, names = { input: 'images', output: 'scores' }): Uint8Array {
  const dims = [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: size }, { dimValue: size }];
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    graph: {
      name: 'channel-mean',
      node: [
        { input: [names.input], output: ['pooled'], opType: 'GlobalAveragePool', name: 'gap' },
        { input: ['pooled'], output: [names.output], opType: 'Flatten', name: 'flat' },
      ],
      input: [{ name: names.input, type: { tensorType: { elemType: 1, shape: { dim: dims } } } }],
      output: [{ name: names.output, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
    },
  });
}
