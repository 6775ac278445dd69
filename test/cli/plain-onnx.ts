/**
 * An ONNX model that ilsvrc did not write (no ilsvrc metadata, its own input and output names):
 * the scores are the mean of each input channel, so a test knows what it must predict.
 */
import { encodeModel, TensorDataType } from '../../src/onnx/proto.js';

/** With `classes` beyond 3, class c < 3 scores channel c's mean and every other class -10. */
export function channelMeanModel(size: number, names = { input: 'images', output: 'scores' }, classes = 3): Uint8Array {
  const dims = [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: size }, { dimValue: size }];
  const w = new Float32Array(3 * classes);
  for (let c = 0; c < 3; c++) w[c * classes + c] = 1;
  const b = new Float32Array(classes).fill(-10).fill(0, 0, 3);
  const t = (name: string, shape: number[], data: Float32Array) => ({
    name,
    dims: shape,
    dataType: TensorDataType.FLOAT,
    rawData: new Uint8Array(data.buffer),
  });
  const wide = classes > 3;
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    graph: {
      name: 'channel-mean',
      node: [
        { input: [names.input], output: ['pooled'], opType: 'GlobalAveragePool', name: 'gap' },
        { input: ['pooled'], output: [wide ? 'flat' : names.output], opType: 'Flatten', name: 'flat' },
        ...(wide ? [{ input: ['flat', 'w', 'b'], output: [names.output], opType: 'Gemm', name: 'fc' }] : []),
      ],
      initializer: wide ? [t('w', [3, classes], w), t('b', [classes], b)] : [],
      input: [{ name: names.input, type: { tensorType: { elemType: 1, shape: { dim: dims } } } }],
      output: [{ name: names.output, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: classes }] } } } }],
    },
  });
}
