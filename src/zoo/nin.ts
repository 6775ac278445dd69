/**
 * Network in Network (Lin, Chen & Yan, ICLR 2014), the ImageNet model: four mlpconv blocks (a conv
 * followed by two 1×1 "cccp" convs) and global average pooling in place of fully connected layers.
 * The last 1×1 conv has one channel per class; GAP turns each map into that class's score.
 * Pools use ceil mode, as in the released Caffe model.
 */
import type { Value } from '../graph/graph.js';
import { conv2d, dropout, maxPool2d } from '../nn/layers.js';
import { globalAvgPool } from '../ops/pool.js';
import { flatten } from '../ops/shape.js';
import { ceilPools, pick, widen, type ModelOptions, type ModelSpec } from './spec.js';

function mlpconv(
  x: Value,
  o: ModelOptions,
  i: number,
  spec: { out: number; k: number; stride?: number; pad?: number },
  cccp: [number, number],
): Value {
  const init = pick(o, { kind: 'normal', std: 0.01 });
  let h = conv2d(x, `conv${i}`, { out: widen(spec.out, o), k: spec.k, stride: spec.stride ?? 1, pad: spec.pad ?? 0, init });
  h = conv2d(h, `cccp${2 * i - 1}`, { out: widen(cccp[0], o), k: 1, init });
  return conv2d(h, `cccp${2 * i}`, { out: widen(cccp[1], o), k: 1, init });
}

export const NIN: ModelSpec = {
  name: 'nin',
  title: 'Network in Network (ImageNet)',
  paper: 'Lin et al., Network In Network',
  year: 2013,
  defaultInput: 224,
  numParams: 7_595_176,
  gmacs: 1.1,
  dropout: 0.5,
  recipe: { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, augment: 'alexnet' },
  build(x, o) {
    const ceil = ceilPools(o, true);
    let h = mlpconv(x, o, 1, { out: 96, k: 11, stride: 4 }, [96, 96]); //  N×96×54×54
    h = maxPool2d(h, 'pool1', 3, 2, { ceil }); //                           N×96×27×27
    h = mlpconv(h, o, 2, { out: 256, k: 5, pad: 2 }, [256, 256]);
    h = maxPool2d(h, 'pool2', 3, 2, { ceil }); //                           N×256×13×13
    h = mlpconv(h, o, 3, { out: 384, k: 3, pad: 1 }, [384, 384]);
    h = maxPool2d(h, 'pool3', 3, 2, { ceil }); //                           N×384×6×6
    h = dropout(h, 'drop', o.dropout ?? 0.5);
    const init = pick(o, { kind: 'normal', std: 0.01 });
    h = conv2d(h, 'conv4', { out: widen(1024, o), k: 3, pad: 1, init });
    h = conv2d(h, 'cccp7', { out: widen(1024, o), k: 1, init });
    h = conv2d(h, 'cccp8', { out: o.classes, k: 1, init }); //              N×classes×6×6
    const logits = x.graph.scope('pool4', () => flatten(globalAvgPool(h), 1)); // global average pooling
    return { logits, aux: [] };
  },
};
