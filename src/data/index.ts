/** The image pipeline: datasets, augmentations, batching. */
export { UsageError } from '../util/errors.js';
export { openDataset, openModelData, type OpenOptions, type DataIdentity } from './open.js';
export {
  type Dataset,
  type DatasetDescriptor,
  type DatasetSplits,
  FileDataset,
  PixelDataset,
  IMAGE_EXTENSIONS,
  imageFolder,
  openImageFolder,
  splitStratified,
  subset,
  writeClassIndex,
  readClassIndex,
} from './dataset.js';
export { openIdx, readIdx, writeIdx, parseIdx, encodeIdx, type IdxArray, FASHION_MNIST_CLASSES } from './idx.js';
export { openCifar, parseCifar, encodeCifar, type CifarRecords } from './cifar.js';
export { generateSynthetic, renderShape, SYNTHETIC_CLASSES, type SyntheticOptions, type SyntheticResult } from './synthetic.js';
export {
  Transforms,
  type TransformSpec,
  type Step,
  type Plan,
  type TrainRecipe,
  type EvalRecipe,
  type CropName,
  EVAL_VIEWS,
  EVAL_RECIPES,
  TRAIN_PRESETS,
  TRAIN_RECIPES,
  viewOfCrop,
  type RecipeOptions,
  pcaLighting,
  rrcParams,
  IMAGENET_EIGVAL,
  IMAGENET_EIGVEC,
  IMAGENET_MEAN,
  IMAGENET_STD,
  evalViewFor,
  defaultMean,
  defaultStd,
} from './transforms.js';
export { Loader, UNREADABLE, type LoaderOptions, type Batch, type BatchU8, type BatchOf, type Skipped } from './loader.js';
export { type Layout, type DecodeOptions, pixelLimitFor, renderSample } from './decode.js';
export { type View, type Image8 } from './pixels.js';
export { probeImage, type ImageHeader } from './probe.js';
