/**
 * AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012). The original runs on two GPUs: conv2, conv4
 * and conv5 see only their own tower's channels (groups = 2). Input 227 px: the paper's 224 does not
 * give its 55×55 conv1 map with an 11×11/4 kernel and no padding.
 */
import type { Value } from '../graph/graph.js';
import { conv2d, dropout, linear, maxPool2d, norm } from '../nn/layers.js';
import { biasInit, ceilPools, lrnOf, PAPER_LRN, pick, widen, type ModelOptions, type ModelOutputs, type ModelSpec } from './spec.js';

/** Norm then pool as in the paper and BVLC AlexNet; CaffeNet (--lrn caffenet) pools first. */
function normPool(h: Value, o: ModelOptions, i: number): Value {
  const lrn = lrnOf(o, PAPER_LRN);
  const ceil = ceilPools(o, false);
  if (o.lrn === 'caffenet') return norm(maxPool2d(h, `pool${i}`, 3, 2, { ceil }), `norm${i}`, lrn);
  return maxPool2d(norm(h, `norm${i}`, lrn), `pool${i}`, 3, 2, { ceil });
}

function alexnet(x: Value, o: ModelOptions, towers: 1 | 2): ModelOutputs {
  const gauss = pick(o, { kind: 'normal', std: 0.01 });
  const one = biasInit(o, 1); // conv2, conv4, conv5 and the hidden FC layers start at bias 1
  const c = (n: number) => widen(n, o, towers);
  const p = o.dropout ?? 0.5;
  let h = conv2d(x, 'conv1', { out: c(96), k: 11, stride: 4, init: gauss }); // N×96×55×55
  h = normPool(h, o, 1); //                                                        N×96×27×27
  h = conv2d(h, 'conv2', { out: c(256), k: 5, pad: 2, groups: towers, init: gauss, biasInit: one });
  h = normPool(h, o, 2); //                                                        N×256×13×13
  h = conv2d(h, 'conv3', { out: c(384), k: 3, pad: 1, init: gauss });
  h = conv2d(h, 'conv4', { out: c(384), k: 3, pad: 1, groups: towers, init: gauss, biasInit: one });
  h = conv2d(h, 'conv5', { out: c(256), k: 3, pad: 1, groups: towers, init: gauss, biasInit: one });
  h = maxPool2d(h, 'pool5', 3, 2, { ceil: ceilPools(o, false) }); //              N×256×6×6
  h = dropout(h, 'drop6', p);
  h = linear(h, 'fc6', { out: widen(4096, o), init: gauss, biasInit: one, relu: true });
  h = dropout(h, 'drop7', p);
  h = linear(h, 'fc7', { out: widen(4096, o), init: gauss, biasInit: one, relu: true });
  const logits = linear(h, 'fc8', { out: o.classes, init: gauss });
  return { logits, aux: [] };
}

const recipe = { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, augment: 'alexnet' } as const;

export const AlexNet: ModelSpec = {
  name: 'alexnet',
  title: 'AlexNet (two towers)',
  paper: 'Krizhevsky et al., ImageNet Classification with Deep Convolutional Neural Networks',
  year: 2012,
  defaultInput: 227,
  numParams: 60_965_224,
  gmacs: 0.724,
  dropout: 0.5,
  recipe,
  build: (x, o) => alexnet(x, o, 2),
};

export const AlexNetSingle: ModelSpec = {
  ...AlexNet,
  name: 'alexnet-single',
  title: 'AlexNet (one tower, paper widths)',
  numParams: 62_378_344,
  gmacs: 1.135,
  build: (x, o) => alexnet(x, o, 1),
};
