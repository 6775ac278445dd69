/**
 * The demo's recipe (`ilsvrc train` with no model, and the training page's defaults): a thin VGG-A
 * on 32-pixel synthetic shapes that visibly learns within a few hundred steps. One table, read by
 * src/train/run.ts and src/web/trainer.ts; nothing Node-only, so the page bundle can hold it.
 * Measured on 2 cores: see README "Quick start".
 */
export const DEMO = {
  model: 'vgg-a',
  width: 0.0625,
  inputSize: 32,
  epochs: 10,
  batch: 32,
  // AdamW: plain SGD moves a BN-free VGG this thin off the plateau much later.
  optimizer: 'adamw',
  lr: 0.003,
  schedule: 'cosine',
  warmupSteps: 30,
  weightDecay: 1e-4,
  augment: 'none',
  init: 'kaiming',
  dropout: 0,
  /** More, smaller renders than the default set: 300 per class overfit within the demo's epochs. */
  synthetic: { perClass: 1000, size: 32 },
} as const;
