/**
 * ilsvrc from TypeScript: the classic ILSVRC classifiers as ONNX graphs — build, train, evaluate,
 * predict, visualise and export them. Everything here is re-exported from where it lives; the
 * CLI (`ilsvrc …`) is a thin layer over these same functions. See docs/api.md for a program.
 *
 * User mistakes (a bad option, a missing or corrupt file) throw `UsageError`, whose message says
 * what was expected and what was received; any other error is a bug.
 */

/** The one error type for user mistakes. */
export { UsageError } from './util/errors.js';

// The zoo: `MODELS` lists the papers' networks; `buildModel('vgg-a', { width: 1 / 16, inputSize: 32 })`
// builds one as a graph, `modelOptions` fills in a model's defaults and checks the rest.
export {
  MODELS,
  findModel,
  buildModel,
  modelOptions,
  type ModelSpec,
  type ModelOptions,
  type BuiltModel,
  type BuildOptions,
} from './zoo/index.js';

// Per-layer output shapes, parameters, MACs and receptive fields: `summarize(built.graph, { outputs: [built.logits] })`.
export { summarize, type Summary, type SummaryOptions, type LayerRow } from './graph/summary.js';

// ONNX: `exportModel('vgg-a', { checkpoint })` is `ilsvrc export` — the bytes of a self-describing
// inference .onnx file (dynamic batch, input "input", output "logits", the model card in its
// metadata); the low level: seeded weights for a model's parameters and the graph's bytes.
export { exportModel, type ExportModelOptions, type ExportedModel } from './trained/export.js';
export { initParams } from './graph/init.js';
export { exportInferenceModel, inferenceParams, type ExportOptions, type Opset } from './zoo/export.js';

// Data: `openDataset('synthetic' | 'idx:DIR' | 'cifar:DIR' | 'ilsvrc:DIR' | folder)` gives train/val
// splits; a `Loader` batches a split through `Transforms` (the papers' augmentations and test views).
export {
  openDataset,
  Loader,
  Transforms,
  FileDataset,
  generateSynthetic,
  type OpenOptions,
  type Dataset,
  type DatasetSplits,
  type LoaderOptions,
  type Batch,
  type TransformSpec,
  type TrainRecipe,
  type EvalRecipe,
  type SyntheticOptions,
} from './data/index.js';

// Training. `train` is `ilsvrc train`: options in (every one optional), a run folder out holding
// last.safetensors and best.safetensors; `planRun` shows the config it would run without running it.
export { train, planRun, RUN_DEFAULTS, type RunOptions, type TrainHooks, type RunStart } from './train/run.js';
// The low level: `fit` runs a planned config on given data; `TrainingSession` is one model's
// optimizer steps (ONNX Runtime's training-API names: runTrainStep, runEvalStep, ...).
export { fit, FILES, type FitConfig, type FitOptions, type FitHooks, type FitResult, type EpochSummary } from './train/fit.js';
export { TrainingSession, type TrainingConfig, type TrainingState, type StepBatch, type StepMetrics } from './train/training-session.js';

// Evaluation and prediction, from a checkpoint (.safetensors) or an .onnx file (ilsvrc's, or any
// image classifier's). `readTrained` gives its model, options, weights, class names, view and data.
export { openInference, readTrained, type InferenceModel, type TrainedModel } from './trained/inference.js';
export type { InputFlags, ModelInput } from './trained/input.js';
export { evaluateLoader, type EvalResult, type LogitsFn } from './train/score.js';
export { predict, type Prediction, type PredictOptions } from './trained/predict.js';
// `evaluate(file, { data, crop })` is `ilsvrc evaluate`: the same numbers as its --json, the same files written.
export { evaluate, type EvaluateOptions, type Evaluation } from './cli/evaluate.js';

// Visualisation (ZFNet's microscope): `visualize('filters' | 'occlusion' | …, file, options)` is
// `ilsvrc visualize <kind>`: the PNG written and returned with the numbers behind it. The low level:
// open a trained file as a `Network`, load an image for it, then look at its filters, occlusion maps,
// deconvnet/gradient projections and top activations.
export {
  visualize,
  type VisualizeKind,
  type VisualizeOptions,
  type VisualizeDetails,
  type Visualization,
  type ViewOptions,
  type FiltersViewOptions,
  type ActivationsViewOptions,
  type ProjectionViewOptions,
  type TopViewOptions,
  type OcclusionViewOptions,
} from './cli/visualize.js';
export { cpuSession, openNetwork, zooNetwork, layerNames, type Network, type NetworkGraph } from './viz/network.js';
export { loadImage } from './viz/images.js';
export { convOf, filterStats, filterTiles, type FilterStats, type FilterStat, type ConvWeight } from './viz/filters.js';
export { occlusion, renderOcclusion, defaultOcclusion, type OcclusionOptions, type OcclusionResult } from './viz/occlusion.js';
export { projectImage, renderProjections, type ProjectOptions, type ProjectResult } from './viz/project.js';
export { topActivations, type TopOptions, type TopResult } from './viz/top.js';
export { MODES as PROJECTION_MODES, type Mode as ProjectionMode } from './viz/backward.js';

// Published weights (ONNX model zoo, Caffe .caffemodel, PyTorch state dicts) as a checkpoint.
export { importWeights, saveImported, type ImportResult } from './import/index.js';
