/**
 * torchvision's forms of the classic networks, as its `alexnet` and `googlenet` builders define them, so
 * that its state dicts and exports load as they are. Where each departs from its paper is written
 * beside the line that departs.
 */
import type { Value } from '../graph/graph.js';
import { batchNorm2d, conv2d, dropout, linear, maxPool2d } from '../nn/layers.js';
import { conv } from '../ops/conv.js';
import { add, mul, reduceMean, relu } from '../ops/elementwise.js';
import { avgPool, globalAvgPool } from '../ops/pool.js';
import { concat, flatten, slice } from '../ops/shape.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../util/imagenet.js';
import { INCEPTION, type InceptionRow } from './googlenet.js';
import { ceilPools, pick, widen, type ModelOptions, type ModelOutputs, type ModelSpec } from './spec.js';

// torchvision's GoogLeNet init: a normal of σ 0.01 for every conv and linear weight, truncated at ±2 (200 σ: no draw reaches it).
const TV_GOOGLENET_INIT = { kind: 'normal', std: 0.01 } as const;

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

/** (x − 0.5)/0.5 of torchvision's normalised pixels as a model trained on them expects: torchvision's `transform_input`. */
function transformInput(x: Value): Value {
  const g = x.graph;
  return g.scope('transform_input', () => {
    const scale = IMAGENET_STD.map((s) => s / 0.5);
    const shift = IMAGENET_MEAN.map((m) => (m - 0.5) / 0.5);
    return add(mul(x, g.floats(scale, [1, 3, 1, 1], x.dtype)), g.floats(shift, [1, 3, 1, 1], x.dtype));
  });
}

/** torchvision's BasicConv2d: a convolution without bias, a batch norm (ε 1e-3), a ReLU. */
function basicConv(x: Value, name: string, out: number, k: number, o: ModelOptions, at: { stride?: number; pad?: number } = {}): Value {
  const g = x.graph;
  return g.scope(name, () => {
    const y = g.scope('conv', () => {
      const w = g.param('weight', [out, x.shape[1] ?? 0, k, k], pick(o, TV_GOOGLENET_INIT));
      const [s, p] = [at.stride ?? 1, at.pad ?? 0];
      return conv(x, w, undefined, { strides: [s, s], pads: [p, p, p, p], dilations: [1, 1], group: 1 });
    });
    return relu(batchNorm2d(y, 'bn', { eps: 1e-3 }));
  });
}

function inceptionTv(x: Value, name: string, row: InceptionRow, o: ModelOptions): Value {
  const c = (n: number) => widen(n, o);
  return x.graph.scope(name, () => {
    const b1 = basicConv(x, 'branch1', c(row[0]), 1, o);
    const b2 = basicConv(basicConv(x, 'branch2/0', c(row[1]), 1, o), 'branch2/1', c(row[2]), 3, o, { pad: 1 });
    // torchvision's known deviation: a 3×3 convolution where the paper has 5×5 (kept for its published weights).
    const b3 = basicConv(basicConv(x, 'branch3/0', c(row[3]), 1, o), 'branch3/1', c(row[4]), 3, o, { pad: 1 });
    const b4 = basicConv(maxPool2d(x, 'branch4/0', 3, 1, { pad: 1, ceil: true }), 'branch4/1', c(row[5]), 1, o);
    return concat([b1, b2, b3, b4], 1);
  });
}

/** torchvision's InceptionAux: adaptive 4×4 average pool, 1×1 BasicConv2d, two FC layers. */
function auxTv(x: Value, name: string, o: ModelOptions): Value {
  const init = pick(o, TV_GOOGLENET_INIT);
  return x.graph.scope(name, () => {
    let h = adaptiveAvgPool2d(x, 'pool', 4); //                               N×512×4×4 (4a) / N×528×4×4 (4d)
    h = basicConv(h, 'conv', widen(128, o), 1, o);
    h = linear(h, 'fc1', { out: widen(1024, o), init, relu: true });
    h = dropout(h, 'drop', o.auxDropout ?? 0.7);
    return linear(h, 'fc2', { out: o.classes, init });
  });
}

function googlenetTv(x: Value, o: ModelOptions): ModelOutputs {
  const aux: ModelOutputs['aux'] = [];
  const ceil = ceilPools(o, true);
  let h = o.transformInput ? transformInput(x) : x;
  h = basicConv(h, 'conv1', widen(64, o), 7, o, { stride: 2, pad: 3 }); //     N×64×112×112
  h = maxPool2d(h, 'maxpool1', 3, 2, { ceil }); //                              N×64×56×56
  // No LRN: the batch norms take its place.
  h = basicConv(h, 'conv2', widen(64, o), 1, o);
  h = basicConv(h, 'conv3', widen(192, o), 3, o, { pad: 1 }); //                N×192×56×56
  h = maxPool2d(h, 'maxpool2', 3, 2, { ceil }); //                              N×192×28×28
  h = inceptionTv(h, 'inception3a', INCEPTION['3a']!, o);
  h = inceptionTv(h, 'inception3b', INCEPTION['3b']!, o);
  h = maxPool2d(h, 'maxpool3', 3, 2, { ceil }); //                              N×480×14×14
  h = inceptionTv(h, 'inception4a', INCEPTION['4a']!, o);
  if (o.aux) aux.push({ logits: auxTv(h, 'aux1', o), weight: 0.3 });
  h = inceptionTv(h, 'inception4b', INCEPTION['4b']!, o);
  h = inceptionTv(h, 'inception4c', INCEPTION['4c']!, o);
  h = inceptionTv(h, 'inception4d', INCEPTION['4d']!, o);
  if (o.aux) aux.push({ logits: auxTv(h, 'aux2', o), weight: 0.3 });
  h = inceptionTv(h, 'inception4e', INCEPTION['4e']!, o);
  h = maxPool2d(h, 'maxpool4', 2, 2, { ceil }); // 2×2/2 where the paper pools 3×3/2     N×832×7×7
  h = inceptionTv(h, 'inception5a', INCEPTION['5a']!, o);
  h = inceptionTv(h, 'inception5b', INCEPTION['5b']!, o);
  h = h.graph.scope('avgpool', () => flatten(globalAvgPool(h), 1)); //                 N×1024
  h = dropout(h, 'dropout', o.dropout ?? 0.2);
  return { logits: linear(h, 'fc', { out: o.classes, init: pick(o, TV_GOOGLENET_INIT) }), aux };
}

export const GoogLeNetTv: ModelSpec = {
  name: 'googlenet-tv',
  aliases: ['torchvision-googlenet', 'googlenet_tv'],
  title: "GoogLeNet (torchvision's batch-normalised form)",
  paper: 'Szegedy et al., Going Deeper with Convolutions',
  source: 'torchvision 0.14 googlenet',
  year: 2014,
  defaultInput: 224,
  numParams: 6_624_904,
  gmacs: 1.502,
  dropout: 0.2,
  hasAux: true,
  // torchvision's reference defaults (references/classification: lr 0.1, momentum 0.9, wd 1e-4, 8 × 32 images).
  recipe: { optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, batchSize: 256, augment: 'googlenet' },
  build: googlenetTv,
};
