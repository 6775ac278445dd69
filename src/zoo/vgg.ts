/**
 * VGG (Simonyan & Zisserman, ICLR 2015): the six configurations of the paper's Table 1 as data.
 * Numbers are 3×3 conv widths, "M" a 2×2/2 max pool, "1x1:n" C's 1×1 convs, "LRN" A-LRN's norm.
 * Initialisation: the paper pre-trains A and copies its layers into deeper nets, noting Glorot's
 * random init works as well; we use that (Caffe's xavier) for every configuration.
 */
import type { Init, Value } from '../graph/graph.js';
import { batchNorm2d, conv2d, dropout, linear, maxPool2d, norm } from '../nn/layers.js';
import { relu } from '../ops/elementwise.js';
import { globalAvgPool } from '../ops/pool.js';
import { flatten } from '../ops/shape.js';
import { ceilPools, lrnOf, PAPER_LRN, pick, widen, type ModelOptions, type ModelSpec } from './spec.js';

type Layer = number | 'M' | 'LRN' | `1x1:${number}`;

const VGG_CONFIGS: Record<'A' | 'A-LRN' | 'B' | 'C' | 'D' | 'E', readonly Layer[]> = {
  A: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  'A-LRN': [64, 'LRN', 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  B: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  C: [64, 64, 'M', 128, 128, 'M', 256, 256, '1x1:256', 'M', 512, 512, '1x1:512', 'M', 512, 512, '1x1:512', 'M'],
  D: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  E: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
};

function vgg(x: Value, o: ModelOptions, cfg: readonly Layer[], dense = false, bn = false): Value {
  const init = pick(o, { kind: 'xavier' });
  let h = x;
  let block = 1;
  let inBlock = 0;
  for (const layer of cfg) {
    if (layer === 'M') {
      h = maxPool2d(h, `pool${block}`, 2, 2, { ceil: ceilPools(o, false) });
      block++;
      inBlock = 0;
    } else if (layer === 'LRN') {
      h = norm(h, `norm${block}`, lrnOf(o, PAPER_LRN));
    } else {
      const oneByOne = typeof layer === 'string';
      const out = oneByOne ? Number(layer.slice(4)) : layer;
      const name = `conv${block}_${++inBlock}`;
      h = conv2d(h, name, { out: widen(out, o), k: oneByOne ? 1 : 3, pad: oneByOne ? 0 : 1, init, relu: !bn });
      // torchvision's vgg*_bn: conv (keeping its bias) → BatchNorm2d → ReLU, the ReLU in the norm's layer.
      if (bn) {
        const normed = batchNorm2d(h, `${name}_bn`);
        h = h.graph.scope(`${name}_bn`, () => relu(normed));
      }
    }
  } //                                                           N×512×7×7 at 224 px
  if (dense) return denseClassifier(h, o, init);
  const p = o.dropout ?? 0.5;
  h = linear(h, 'fc6', { out: widen(4096, o), init, relu: true });
  h = dropout(h, 'drop6', p);
  h = linear(h, 'fc7', { out: widen(4096, o), init, relu: true });
  h = dropout(h, 'drop7', p);
  return linear(h, 'fc8', { out: o.classes, init });
}

/**
 * The paper's dense evaluation (Sec. 3.2): "the fully-connected layers are first converted to
 * convolutional layers (the first FC layer to a 7×7 conv. layer, the last two FC layers to 1×1
 * conv. layers)", applied to the whole uncropped image; the class score map is "spatially
 * averaged (sum-pooled)". fc6's kernel is the last feature map's size at o.inputSize (7 at 224),
 * so each weight tensor holds the same numbers, in the same order, as the FC layer's (out, in).
 */
function denseClassifier(features: Value, o: ModelOptions, init: Init): Value {
  const k = [features.shape[2] ?? 1, features.shape[3] ?? 1] as const;
  let h = conv2d(features, 'fc6', { out: widen(4096, o), k, init, relu: true });
  h = conv2d(h, 'fc7', { out: widen(4096, o), k: 1, init, relu: true });
  h = conv2d(h, 'fc8', { out: o.classes, k: 1, init, relu: false }); //   N×classes×(H/32−k+1)×(W/32−k+1)
  return h.graph.scope('score', () => flatten(globalAvgPool(h), 1));
}

const recipe = { optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 256, augment: 'vgg' } as const;
const paper = 'Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition';

function vggSpec(cfg: keyof typeof VGG_CONFIGS, numParams: number, gmacs: number, aliases: string[] = []): ModelSpec {
  return {
    name: `vgg-${cfg.toLowerCase()}`,
    aliases,
    title: `VGG configuration ${cfg} (${VGG_CONFIGS[cfg].filter((l) => l !== 'M' && l !== 'LRN').length + 3} weight layers)`,
    paper,
    year: 2014,
    defaultInput: 224,
    numParams,
    gmacs,
    dropout: 0.5,
    recipe,
    build: (x, o) => ({ logits: vgg(x, o, VGG_CONFIGS[cfg]), aux: [] }),
    dense: (x, o) => ({ logits: vgg(x, o, VGG_CONFIGS[cfg], true), aux: [] }),
  };
}

/**
 * torchvision's batch-normalised VGG (vgg11_bn … vgg19_bn): a BatchNorm2d after each conv, before
 * its ReLU; nothing else differs. Parameter counts are torchvision's (running statistics not counted).
 */
function vggBnSpec(cfg: 'A' | 'B' | 'D' | 'E', depth: number, numParams: number, gmacs: number): ModelSpec {
  const plain = vggSpec(cfg, numParams, gmacs);
  return {
    ...plain,
    name: `${plain.name}-bn`,
    aliases: [`vgg${depth}_bn`, `vgg${depth}-bn`],
    title: `${plain.title}, batch-normalised`,
    source: `torchvision 0.14 vgg${depth}_bn`,
    build: (x, o) => ({ logits: vgg(x, o, VGG_CONFIGS[cfg], false, true), aux: [] }),
    dense: (x, o) => ({ logits: vgg(x, o, VGG_CONFIGS[cfg], true, true), aux: [] }),
  };
}

export const VGG_A = vggSpec('A', 132_863_336, 7.61, ['vgg11']);
export const VGG_A_LRN = vggSpec('A-LRN', 132_863_336, 7.61);
export const VGG_B = vggSpec('B', 133_047_848, 11.31, ['vgg13']);
export const VGG_C = vggSpec('C', 133_638_952, 11.77);
export const VGG_D = vggSpec('D', 138_357_544, 15.47, ['vgg16']);
export const VGG_E = vggSpec('E', 143_667_240, 19.63, ['vgg19']);
export const VGG_A_BN = vggBnSpec('A', 11, 132_868_840, 7.61);
export const VGG_B_BN = vggBnSpec('B', 13, 133_053_736, 11.31);
export const VGG_D_BN = vggBnSpec('D', 16, 138_365_992, 15.47);
export const VGG_E_BN = vggBnSpec('E', 19, 143_678_248, 19.63);
