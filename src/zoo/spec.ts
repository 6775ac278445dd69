/** What every zoo entry declares; the options every model takes are the table in options.ts. */
import type { Init, Value } from '../graph/graph.js';
import type { ModelOptions } from './options.js';

export { INPUT_KINDS, LRN_KINDS, POOL_MODES, type ModelOptions } from './options.js';

/**
 * Caffe's ImageNet mean pixel in B, G, R order (0–255): the per-channel mean of BVLC's
 * ilsvrc_2012_mean (caffe/imagenet_mean.hpp: B 104.00, G 116.66, R 122.67), which the BVLC models'
 * mean image or mean_value 104/117/123 subtracted.
 */
export const CAFFE_MEAN_BGR = [104.00698793, 116.66876762, 122.67891434] as const;

// The AlexNet paper's b = a / (k + α Σa²)^β sums without dividing by n; ONNX divides alpha by size, so α·n.
export const PAPER_LRN = { size: 5, alpha: 1e-4 * 5, beta: 0.75, bias: 2 } as const;
// Caffe's LRN layer divides α by n (as ONNX does) and its models keep the default k = 1.
export const CAFFE_LRN = { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 } as const;

/** The LRN constants under the options: the model's own unless --lrn names a variant. */
export function lrnOf(o: ModelOptions, own: typeof PAPER_LRN | typeof CAFFE_LRN): typeof PAPER_LRN | typeof CAFFE_LRN {
  return o.lrn === undefined ? own : o.lrn === 'paper' ? PAPER_LRN : CAFFE_LRN;
}

/** Whether max pools round their output size up: the model's own unless --pool says. */
export function ceilPools(o: ModelOptions, own: boolean): boolean {
  return o.pool === undefined ? own : o.pool === 'ceil';
}

export interface ModelOutputs {
  logits: Value;
  /** Auxiliary classifiers' logits, with the weight of each loss. */
  aux: { logits: Value; weight: number }[];
}

/** The paper's training recipe, as the CLI's defaults for this model. */
interface Recipe {
  optimizer: 'sgd';
  lr: number;
  momentum: number;
  weightDecay: number;
  batchSize: number;
  augment: 'alexnet' | 'vgg' | 'googlenet';
}

export interface ModelSpec {
  name: string;
  aliases?: readonly string[];
  title: string;
  paper: string;
  /** Where the variant comes from when it is not the paper's own (e.g. 'torchvision 0.14 vgg11_bn'). */
  source?: string;
  year: number;
  defaultInput: number;
  /** Reference parameter count at the paper's configuration (1000 classes, 3 channels, width 1, no aux). */
  numParams: number;
  /** Reference multiply–accumulates at the default input (GMACs). */
  gmacs: number;
  dropout: number;
  hasAux?: boolean;
  recipe: Recipe;
  build(x: Value, o: ModelOptions): ModelOutputs;
  /**
   * The fully convolutional form for dense evaluation (VGG): the classifier as convolutions over
   * the last feature map and the score map averaged over space, so any input at least
   * o.inputSize on each side gives logits. Its parameters have build's names and sizes (only
   * their shapes differ), so the same weights load into either.
   */
  dense?(x: Value, o: ModelOptions): ModelOutputs;
}

/** Scales a width by the multiplier, keeping it a positive multiple of `multiple`. */
export function widen(n: number, o: ModelOptions, multiple = 1): number {
  return Math.max(multiple, Math.round((n * o.width) / multiple) * multiple);
}

/** The paper's init unless the user asked for He-normal. */
export function pick(o: ModelOptions, paper: Init): Init {
  return o.init === 'kaiming' ? { kind: 'kaiming' } : paper;
}

/** A bias init: the paper's constant, or zero under He-normal. */
export function biasInit(o: ModelOptions, value: number): Init {
  return { kind: 'constant', value: o.init === 'kaiming' ? 0 : value };
}
