/** What every zoo entry declares, and the options every model takes. */
import type { Init, Value } from '../src/graph/graph.js';

export interface ModelOptions {
  /** Output classes (1000 for ImageNet). */
  classes: number;
  /** Square input side in pixels. */
  inputSize: number;
  /** Input channels (3 for RGB, 1 for grayscale). */
  channels: number;
  /** Multiplier on every layer's width (channels and hidden units), for small experiments. */
  width: number;
  /** Dropout rate of the classifier; undefined keeps the paper's. */
  dropout: number | undefined;
  /** Build auxiliary classifiers (GoogLeNet) for training. */
  aux: boolean;
  /** "paper": each paper's initialisation; "kaiming": He-normal weights, zero biases (trains faster at small width). */
  init: 'paper' | 'kaiming';
}

export interface ModelOutputs {
  logits: Value;
  /** Auxiliary classifiers' logits, with the weight of each loss. */
  aux: { logits: Value; weight: number }[];
}

/** The paper's training recipe, as the CLI's defaults for this model. */
export interface Recipe {
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
