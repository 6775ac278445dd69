/**
 * ZFNet (Zeiler & Fergus, ECCV 2014): AlexNet on one GPU with the first layers fixed after looking at
 * them with a deconvnet — conv1 7×7 stride 2 (was 11×11/4: aliasing, dead filters), conv2 stride 2.
 * As published: Figure 3 of arXiv 1311.2901 has layers 1 and 2 rectify, max-pool 3×3/2 and then
 * "contrast normalize across feature maps"; many reimplementations leave that out. The paper gives
 * no constants for it: we use AlexNet's LRN, which it modifies. (Renormalising conv1 filters whose
 * RMS exceeds 0.1 is a training detail, not part of the graph.)
 */
import { conv2d, dropout, linear, maxPool2d, norm } from '../nn/layers.js';
import { ceilPools, lrnOf, PAPER_LRN, pick, widen, type ModelSpec } from './spec.js';

export const ZFNet: ModelSpec = {
  name: 'zfnet',
  title: 'ZFNet',
  paper: 'Zeiler & Fergus, Visualizing and Understanding Convolutional Networks',
  year: 2013,
  defaultInput: 224,
  numParams: 62_357_608,
  gmacs: 1.168,
  dropout: 0.5,
  recipe: { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 128, augment: 'alexnet' },
  build(x, o) {
    const init = pick(o, { kind: 'normal', std: 0.01 });
    const c = (n: number) => widen(n, o);
    const p = o.dropout ?? 0.5;
    const ceil = ceilPools(o, false);
    let h = conv2d(x, 'conv1', { out: c(96), k: 7, stride: 2, pad: 1, init }); // N×96×110×110
    h = maxPool2d(h, 'pool1', 3, 2, { pad: 1, ceil }); //                           N×96×55×55
    h = norm(h, 'norm1', lrnOf(o, PAPER_LRN)); //                   after pooling, as in the paper's Figure 3
    h = conv2d(h, 'conv2', { out: c(256), k: 5, stride: 2, init }); //              N×256×26×26
    h = maxPool2d(h, 'pool2', 3, 2, { pad: 1, ceil }); //                           N×256×13×13
    h = norm(h, 'norm2', lrnOf(o, PAPER_LRN));
    h = conv2d(h, 'conv3', { out: c(384), k: 3, pad: 1, init });
    h = conv2d(h, 'conv4', { out: c(384), k: 3, pad: 1, init });
    h = conv2d(h, 'conv5', { out: c(256), k: 3, pad: 1, init });
    h = maxPool2d(h, 'pool5', 3, 2, { ceil }); //                                     N×256×6×6
    h = dropout(h, 'drop6', p);
    h = linear(h, 'fc6', { out: widen(4096, o), init, relu: true });
    h = dropout(h, 'drop7', p);
    h = linear(h, 'fc7', { out: widen(4096, o), init, relu: true });
    return { logits: linear(h, 'fc8', { out: o.classes, init }), aux: [] };
  },
};
