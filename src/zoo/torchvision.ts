/**
 * torchvision's forms of the classic networks, as its `alexnet` and `googlenet` builders define them, so
 * that its state dicts and exports load as they are. Where each departs from its paper is written
 * beside the line that departs.
 */
import type { Value } from '../graph/graph.js';
import { conv2d, dropout, linear, maxPool2d } from '../nn/layers.js';
import { reduceMean } from '../ops/elementwise.js';
import { avgPool } from '../ops/pool.js';
import { concat, slice } from '../ops/shape.js';
import { pick, widen, type ModelOptions, type ModelOutputs, type ModelSpec } from './spec.js';

/**
 * torch's AdaptiveAvgPool2d: output cell i of n averages rows ⌊i·H/n⌋ … ⌈(i+1)·H/n⌉ − 1 (likewise
 * columns). Identity or one AveragePool where the side divides; otherwise a mean per band of rows,
 * then per band of columns (the cells are rectangles, so the two means make the cell's mean).
 */
function adaptiveAvgPool2d(x: Value, name: string, n: number): Value {
  const [h, w] = [x.shape[2] ?? 0, x.shape[3] ?? 0];
  if (h === n && w === n) return x;
  return x.graph.scope(name, () => {
    if (h % n === 0 && w % n === 0) {
      const [kh, kw] = [h / n, w / n];
      return avgPool(x, { kernel: [kh, kw], strides: [kh, kw], pads: [0, 0, 0, 0], ceil: false, countIncludePad: false });
    }
    const bands = (v: Value, axis: number, size: number) =>
      concat(
        Array.from({ length: n }, (_, i) => {
          const [s, e] = [Math.floor((i * size) / n), Math.ceil(((i + 1) * size) / n)];
          return reduceMean(slice(v, [s], [e], [axis]), [axis], true);
        }),
        axis,
      );
    return bands(bands(x, 2, h), 3, w);
  });
}

/**
 * torchvision's AlexNet: the single-tower form of Krizhevsky's "One weird trick" (2014): 64/192/384/
 * 256/256 channels instead of the paper's 96/256/384/384/256, no LRN, an adaptive 6×6 average pool
 * before the classifier, and dropout before each hidden FC layer instead of after it.
 */
function alexnetTv(x: Value, o: ModelOptions): ModelOutputs {
  // torchvision keeps PyTorch's default init (Kaiming-uniform, a = √5): the paper's 0.01 Gaussian is as near as the table offers.
  const init = pick(o, { kind: 'normal', std: 0.01 });
  const c = (n: number) => widen(n, o);
  const p = o.dropout ?? 0.5;
  // Layers keep the paper's names; torchvision's module paths are in the comments.
  let h = conv2d(x, 'conv1', { out: c(64), k: 11, stride: 4, pad: 2, init }); // features.0   N×64×55×55
  h = maxPool2d(h, 'pool1', 3, 2); //                                             features.2   N×64×27×27
  h = conv2d(h, 'conv2', { out: c(192), k: 5, pad: 2, init }); //                 features.3   N×192×27×27
  h = maxPool2d(h, 'pool2', 3, 2); //                                             features.5   N×192×13×13
  h = conv2d(h, 'conv3', { out: c(384), k: 3, pad: 1, init }); //                 features.6
  h = conv2d(h, 'conv4', { out: c(256), k: 3, pad: 1, init }); //                 features.8
  h = conv2d(h, 'conv5', { out: c(256), k: 3, pad: 1, init }); //                 features.10
  h = maxPool2d(h, 'pool5', 3, 2); //                                             features.12  N×256×6×6
  h = adaptiveAvgPool2d(h, 'avgpool', 6); //                                     avgpool      N×256×6×6 at any input
  h = dropout(h, 'drop6', p);
  h = linear(h, 'fc6', { out: widen(4096, o), init, relu: true }); //            classifier.1
  h = dropout(h, 'drop7', p);
  h = linear(h, 'fc7', { out: widen(4096, o), init, relu: true }); //            classifier.4
  return { logits: linear(h, 'fc8', { out: o.classes, init }), aux: [] }; // classifier.6
}

export const AlexNetTv: ModelSpec = {
  name: 'alexnet-tv',
  aliases: ['torchvision-alexnet', 'alexnet_tv'],
  title: "AlexNet (torchvision's one-tower form)",
  paper: 'Krizhevsky, One weird trick for parallelizing convolutional neural networks',
  source: 'torchvision 0.14 alexnet',
  year: 2014,
  defaultInput: 224,
  numParams: 61_100_840,
  gmacs: 0.714,
  dropout: 0.5,
  // torchvision's reference recipe for AlexNet and VGG (references/classification: lr 0.01, wd 1e-4, 8 × 32 images).
  recipe: { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4, batchSize: 256, augment: 'alexnet' },
  build: alexnetTv,
};
