/**
 * GoogLeNet (Szegedy et al., CVPR 2015), Inception v1 as in the paper's Table 1: 5×5 branches, LRN,
 * no batch norm, two auxiliary classifiers (after 4a and 4d) used in training with loss weight 0.3.
 * `googlenet-naive` swaps every module for the naive one (no 1×1 reductions, pooled input passed
 * through), to show why the reductions were needed. Pools use ceil mode, as in the Caffe model.
 */
import type { Value } from '../graph/graph.js';
import { conv2d, dropout, linear, maxPool2d, norm, avgPool2d } from '../nn/layers.js';
import { concat, flatten } from '../ops/shape.js';
import { globalAvgPool } from '../ops/pool.js';
import { CAFFE_LRN, ceilPools, lrnOf, pick, widen, type ModelOptions, type ModelOutputs, type ModelSpec } from './spec.js';

/** One row of Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj. */
export type InceptionRow = readonly [number, number, number, number, number, number];

export const INCEPTION: Record<string, InceptionRow> = {
  '3a': [64, 96, 128, 16, 32, 32], //     28×28×256
  '3b': [128, 128, 192, 32, 96, 64], //   28×28×480
  '4a': [192, 96, 208, 16, 48, 64], //    14×14×512
  '4b': [160, 112, 224, 24, 64, 64], //   14×14×512
  '4c': [128, 128, 256, 24, 64, 64], //   14×14×512
  '4d': [112, 144, 288, 32, 64, 64], //   14×14×528
  '4e': [256, 160, 320, 32, 128, 128], // 14×14×832
  '5a': [256, 160, 320, 32, 128, 128], // 7×7×832
  '5b': [384, 192, 384, 48, 128, 128], // 7×7×1024
};

export function inception(x: Value, name: string, row: InceptionRow, o: ModelOptions, naive = false): Value {
  const init = pick(o, { kind: 'xavier' });
  const c = (n: number) => widen(n, o);
  return x.graph.scope(name, () => {
    const b1 = conv2d(x, '1x1', { out: c(row[0]), k: 1, init });
    if (naive) {
      const b3 = conv2d(x, '3x3', { out: c(row[2]), k: 3, pad: 1, init });
      const b5 = conv2d(x, '5x5', { out: c(row[4]), k: 5, pad: 2, init });
      const bp = maxPool2d(x, 'pool', 3, 1, { pad: 1 });
      return concat([b1, b3, b5, bp], 1);
    }
    const b3 = conv2d(conv2d(x, '3x3_reduce', { out: c(row[1]), k: 1, init }), '3x3', { out: c(row[2]), k: 3, pad: 1, init });
    const b5 = conv2d(conv2d(x, '5x5_reduce', { out: c(row[3]), k: 1, init }), '5x5', { out: c(row[4]), k: 5, pad: 2, init });
    const bp = conv2d(maxPool2d(x, 'pool', 3, 1, { pad: 1 }), 'pool_proj', { out: c(row[5]), k: 1, init });
    return concat([b1, b3, b5, bp], 1);
  });
}

function auxHead(x: Value, name: string, o: ModelOptions): Value {
  const init = pick(o, { kind: 'xavier' });
  return x.graph.scope(name, () => {
    let h = avgPool2d(x, 'pool', 5, 3); //                          N×512×4×4 (4a) / N×528×4×4 (4d)
    h = conv2d(h, 'conv', { out: widen(128, o), k: 1, init });
    h = linear(h, 'fc', { out: widen(1024, o), init, relu: true });
    h = dropout(h, 'drop', o.auxDropout ?? 0.7);
    return linear(h, 'classifier', { out: o.classes, init });
  });
}

function googlenet(x: Value, o: ModelOptions, naive: boolean): ModelOutputs {
  const init = pick(o, { kind: 'xavier' });
  const aux: ModelOutputs['aux'] = [];
  const ceil = ceilPools(o, true);
  // The paper gives no LRN constants; the model's own are those of its Caffe release.
  const lrn = lrnOf(o, CAFFE_LRN);
  let h = conv2d(x, 'conv1/7x7_s2', { out: widen(64, o), k: 7, stride: 2, pad: 3, init }); // N×64×112×112
  h = maxPool2d(h, 'pool1/3x3_s2', 3, 2, { ceil }); //                                         N×64×56×56
  h = norm(h, 'pool1/norm1', lrn);
  h = conv2d(h, 'conv2/3x3_reduce', { out: widen(64, o), k: 1, init });
  h = conv2d(h, 'conv2/3x3', { out: widen(192, o), k: 3, pad: 1, init }); //                 N×192×56×56
  h = norm(h, 'conv2/norm2', lrn);
  h = maxPool2d(h, 'pool2/3x3_s2', 3, 2, { ceil }); //                                         N×192×28×28
  h = inception(h, 'inception_3a', INCEPTION['3a']!, o, naive);
  h = inception(h, 'inception_3b', INCEPTION['3b']!, o, naive);
  h = maxPool2d(h, 'pool3/3x3_s2', 3, 2, { ceil }); //                                         N×480×14×14
  h = inception(h, 'inception_4a', INCEPTION['4a']!, o, naive);
  if (o.aux) aux.push({ logits: auxHead(h, 'loss1', o), weight: 0.3 });
  h = inception(h, 'inception_4b', INCEPTION['4b']!, o, naive);
  h = inception(h, 'inception_4c', INCEPTION['4c']!, o, naive);
  h = inception(h, 'inception_4d', INCEPTION['4d']!, o, naive);
  if (o.aux) aux.push({ logits: auxHead(h, 'loss2', o), weight: 0.3 });
  h = inception(h, 'inception_4e', INCEPTION['4e']!, o, naive);
  h = maxPool2d(h, 'pool4/3x3_s2', 3, 2, { ceil }); //                                         N×832×7×7
  h = inception(h, 'inception_5a', INCEPTION['5a']!, o, naive);
  h = inception(h, 'inception_5b', INCEPTION['5b']!, o, naive);
  // The paper's 7×7/1 average pool; global so that other input sizes work too.
  h = x.graph.scope('pool5/7x7_s1', () => flatten(globalAvgPool(h), 1)); //                  N×1024
  h = dropout(h, 'pool5/drop', o.dropout ?? 0.4);
  return { logits: linear(h, 'loss3/classifier', { out: o.classes, init }), aux };
}

const recipe = { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 2e-4, batchSize: 32, augment: 'googlenet' } as const;

export const GoogLeNet: ModelSpec = {
  name: 'googlenet',
  aliases: ['inception-v1'],
  title: 'GoogLeNet (Inception v1)',
  paper: 'Szegedy et al., Going Deeper with Convolutions',
  year: 2014,
  defaultInput: 224,
  numParams: 6_998_552,
  gmacs: 1.583,
  dropout: 0.4,
  hasAux: true,
  recipe,
  build: (x, o) => googlenet(x, o, false),
};

export const GoogLeNetNaive: ModelSpec = {
  ...GoogLeNet,
  name: 'googlenet-naive',
  aliases: [],
  title: 'GoogLeNet with naive inception modules',
  numParams: 0, // no published figure: the architecture is the paper's thought experiment
  gmacs: 0,
  build: (x, o) => googlenet(x, o, true),
};
